"""Work units of a fleet and the coordination partitions they map to (docs/scaling.md).

A fleet of replicas shares the work through Kafka's group membership on a coordination topic of
N partitions: each replica owns the units of the partitions Kafka assigned to it. The units:

- `cluster/<cluster>`: a monitored cluster's cluster-wide series (brokers, topics, replication),
  and all of its groups when the cluster is kept whole;
- `group/<cluster>/<group>`: one consumer group of a cluster split by group (the default);
- `spark`: the Spark collection, with the `spark-*` groups (Spark queries as consumer groups,
  and the groups the streamscope listener commits under) when Spark is configured.

A unit maps to a partition by a stable hash of its name (BLAKE2b, not Python's salted `hash`),
so every replica, whatever its version or start time, computes the same owner. Pure functions
and a picklable scope: the collector's child process applies the scope to what it collects.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

SPARK_UNIT = "spark"
SPARK_GROUP_PREFIX = "spark-"


def cluster_unit(cluster: str) -> str:
    return f"cluster/{cluster}"


def group_unit(cluster: str, group: str) -> str:
    return f"group/{cluster}/{group}"


def partition_of(unit: str, partitions: int) -> int:
    """The coordination partition of a unit: stable across processes, hosts and versions."""
    digest = hashlib.blake2b(unit.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True)
class UnitMap:
    """How a fleet cuts its work into units: the coordination topic's partition count, the
    clusters kept whole (one unit each), and whether Spark (with its `spark-*` groups) is one."""

    partitions: int
    whole_clusters: frozenset[str] = frozenset()
    spark: bool = False

    def group_unit(self, cluster: str, group: str) -> str:
        """The unit a group of `cluster` belongs to."""
        if self.spark and group.startswith(SPARK_GROUP_PREFIX):
            return SPARK_UNIT
        if cluster in self.whole_clusters:
            return cluster_unit(cluster)
        return group_unit(cluster, group)

    def partition(self, unit: str) -> int:
        return partition_of(unit, self.partitions)


@dataclass(frozen=True)
class CollectScope:
    """What one replica collects of one cluster this cycle: the groups whose unit is on an owned
    partition, and the cluster-wide data (every kept topic) only when it owns the cluster's unit.
    Picklable: it crosses into the collector's child process with each cycle's request."""

    cluster: str
    units: UnitMap
    owned: frozenset[int]  # coordination partitions this replica owns

    @property
    def cluster_wide(self) -> bool:
        return self.units.partition(cluster_unit(self.cluster)) in self.owned

    def owns_group(self, group: str) -> bool:
        return self.units.partition(self.units.group_unit(self.cluster, group)) in self.owned
