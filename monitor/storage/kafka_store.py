"""Kafka history: one row set per collection cycle of a cluster, and the queries over it.

Tables, the clustering by cycle, what a failed or stale cycle stores and how range queries
downsample: docs/architecture.md, "Storage". The read side is the `HistoryReader` the web layer
and the alert inputs use (`monitor.storage.reader`).
"""
from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import Any

from collectors.lag_columns import field_indices, partition_columns
from collectors.models import ClusterState, GroupLag, KafkaClusterSnapshot, Topic, TopicRates
from monitor.storage.codec import METHOD_CODE, STATUS_CODE, method_name, status_name, to_ms, to_seconds
from monitor.storage.database import Database
from monitor.storage.peaks import PeakBuckets, bucket_width, merge_maxima
from monitor.storage.reader import (ClusterPoint, CommitPoint, GroupPoint, PartitionLagPoint, PartitionRatePoint,
                                    TopicPoint, commit_points)

log = logging.getLogger(__name__)

NameIds = Callable[[str], int]

class KafkaStore:
    """The Kafka tables of the history database. Thread-safe (see `Database`)."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._peaks = PeakBuckets()  # window_peaks' bucket maxima, kept between calls

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------

    def append(self, state: ClusterState) -> None:
        """Store one collection cycle of one cluster in a single transaction.

        A second append with the same (cluster, at) is ignored (idempotent). A stale state stores
        only the cycles row, at the injected clock's time.
        """
        raw, lag = state.raw, state.lag
        cluster = raw.cluster or lag.cluster
        at = float(self._clock()) if state.stale else float(lag.at or raw.finished_at or self._clock())
        with self._db.write("append") as conn:
            ids = self._db.intern(conn, ())
            get = ids.get

            def nid(name: str) -> int:
                return get(name) or self._db.intern(conn, (name,))[name]

            rows = _CycleRows() if state.stale else _CycleRows.of(state, nid)
            cycle = _insert_cycle(conn, nid(cluster), at, state, rows)
            if cycle is None:
                log.debug("history: cycle %s@%s already stored; append ignored", cluster, at)
                return
            if rows.has_data:
                rows.insert(conn, cycle)

    def append_failure(self, cluster: str, at: float, error: str | None) -> None:
        """Record a failed collection cycle (no data; the published state is stale).

        Shows as ``ok=False`` in cluster_series/window("cluster") and is kept by downsampling.
        A second failure at the same (cluster, at) is ignored.
        """
        with self._db.write("append_failure") as conn:
            cid = self._db.intern(conn, (cluster,))[cluster]
            conn.execute(
                "INSERT OR IGNORE INTO cycles(cluster, at, ok, stale, has_data, error)"
                " VALUES (?, ?, 0, 1, 0, ?)",
                (cid, float(at), error),
            )

    def set_empty_since(self, cluster: str, mapping: Mapping[str, float]) -> None:
        """Persist which groups of `cluster` are Empty since when; other groups' rows go away."""
        with self._db.write("set_empty_since") as conn:
            ids = self._db.intern(conn, {cluster, *mapping})
            cid = ids[cluster]
            conn.execute("DELETE FROM empty_since WHERE cluster = ?", (cid,))
            conn.executemany(
                "INSERT INTO empty_since(cluster, grp, since) VALUES (?,?,?)",
                [(cid, ids[g], float(since)) for g, since in mapping.items()],
            )

    # ------------------------------------------------------------------------------------------
    # reading: state kept for the collection
    # ------------------------------------------------------------------------------------------

    def empty_since(self, cluster: str) -> dict[str, float]:
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return {}
            rows = conn.execute(
                "SELECT grp, since FROM empty_since WHERE cluster = ?", (cid,)
            ).fetchall()
            return {self._db.name_of(conn, g): since for g, since in rows}


    def clusters(self) -> list[str]:
        with self._db.read() as conn:
            ids = [r[0] for r in conn.execute("SELECT DISTINCT cluster FROM cycles")]
            return sorted(self._db.name_of(conn, i) for i in ids)

    # ------------------------------------------------------------------------------------------
    # reading: replay at startup
    # ------------------------------------------------------------------------------------------

    def replay(
        self, cluster: str, since: float
    ) -> Iterator[tuple[float, dict[tuple[str, int], int], dict[tuple[str, str, int], int], dict[str, str]]]:
        """Yield (at, end_offsets, committed, topic_ids) for each stored data cycle whose cycle
        time is >= since, oldest first, for ``OffsetWindows.record``.

        ``at`` is the time the cycle's end offsets were fetched (``end_offsets_fetched_at``, what
        ``OffsetWindows.record_snapshot`` uses live), or the cycle time when that is unknown.
        end_offsets maps (topic, partition) -> latest offset; committed maps
        (group, topic, partition) -> committed offset. Unknown (NULL) and negative sentinel
        offsets, and positions without a committed offset, are left out; topic_ids maps topic ->
        id where known (a re-created topic's windows restart). Each cycle is read in its own
        short read transaction, so a slow consumer does not pin a snapshot.
        """
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return
            cycles = conn.execute(
                "SELECT id, coalesce(offsets_fetched_at, at) FROM cycles"
                " WHERE cluster = ? AND at >= ? AND has_data = 1 ORDER BY at",
                (cid, since),
            ).fetchall()
        for cycle, at in cycles:
            with self._db.read() as conn:
                po = conn.execute(
                    "SELECT topic, partition, latest FROM partition_offsets"
                    " WHERE cycle = ? AND latest >= 0",
                    (cycle,),
                ).fetchall()
                gp = conn.execute(
                    "SELECT grp, topic, partition, committed FROM group_partitions"
                    " WHERE cycle = ? AND committed >= 0",
                    (cycle,),
                ).fetchall()
                ids = conn.execute(
                    "SELECT topic, topic_id FROM topic_summary WHERE cycle = ? AND topic_id IS NOT NULL",
                    (cycle,),
                ).fetchall()
                names = self._db.all_names(conn)
            ends = {(names[t], p): latest for t, p, latest in po}
            committed = {(names[g], names[t], p): off for g, t, p, off in gp}
            yield at, ends, committed, {names[t]: i for t, i in ids}

    # ------------------------------------------------------------------------------------------
    # reading: latest values
    # ------------------------------------------------------------------------------------------

    def _latest_data_cycle(self, conn: sqlite3.Connection, cluster: str) -> tuple[int, int, float] | None:
        """(cluster id, cycle id, at) of the latest cycle of `cluster` that carried data."""
        cid = self._db.name_id(conn, cluster)
        if cid is None:
            return None
        row = conn.execute(
            "SELECT id, at FROM cycles WHERE cluster = ? AND has_data = 1 ORDER BY at DESC LIMIT 1",
            (cid,),
        ).fetchone()
        return None if row is None else (cid, row[0], row[1])

    def latest_cycle(self, cluster: str) -> dict[str, Any] | None:
        """The most recent cycles row of `cluster` (data or failed), or None."""
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return None
            row = conn.execute(
                "SELECT at, ok, stale, has_data, error, offsets_fetched_at, duration, brokers,"
                " groups, total_lag, max_time_lag FROM cycles WHERE cluster = ?"
                " ORDER BY at DESC LIMIT 1",
                (cid,),
            ).fetchone()
        if row is None:
            return None
        keys = ("at", "ok", "stale", "has_data", "error", "offsets_fetched_at", "duration",
                "brokers", "groups", "total_lag", "max_time_lag_seconds")
        out = dict(zip(keys, row))
        for k in ("ok", "stale", "has_data"):
            out[k] = bool(out[k])
        return out

    def groups_latest(self, cluster: str) -> list[dict[str, Any]]:
        """Summary of every group in the latest cycle that carried data, sorted by group name.

        Keys: group, at, lag, time_lag_seconds, time_lag_method, consume_rate, produce_rate,
        eta_seconds, status, state, members, is_empty, empty_since, fetched_at, error, topics,
        partitions.
        """
        with self._db.read() as conn:
            latest = self._latest_data_cycle(conn, cluster)
            if latest is None:
                return []
            cid, cycle, at = latest
            rows = conn.execute(
                "SELECT grp, lag, time_lag, method, consume_rate, produce_rate, eta, status,"
                " state, members, is_empty, fetched_at, error, readable_lag, lower_bound,"
                " uncommitted FROM group_summary WHERE cycle = ?",
                (cycle,),
            ).fetchall()
            topics: dict[int, set[int]] = {}
            parts: dict[int, int] = {}
            for g, t, n in conn.execute(
                "SELECT grp, topic, count(*) FROM group_partitions WHERE cycle = ?"
                " GROUP BY grp, topic",
                (cycle,),
            ):
                topics.setdefault(g, set()).add(t)
                parts[g] = parts.get(g, 0) + n
            empty = dict(
                conn.execute("SELECT grp, since FROM empty_since WHERE cluster = ?", (cid,))
            )
            out = []
            for (g, lag, tl, method, cr, pr, eta, status, st, members, is_empty, fetched,
                 err, readable, lower, uncommitted) in rows:
                out.append({
                    "group": self._db.name_of(conn, g), "at": at, "lag": lag,
                    "readable_lag": lag if readable is None else readable,
                    "time_lag_seconds": to_seconds(tl), "time_lag_method": method_name(method),
                    "time_lag_lower_bound": bool(lower), "uncommitted_partitions": uncommitted or 0,
                    "consume_rate": cr, "produce_rate": pr, "eta_seconds": eta,
                    "status": status_name(status), "state": self._db.name_of(conn, st),
                    "members": members, "is_empty": bool(is_empty), "empty_since": empty.get(g),
                    "fetched_at": fetched, "error": err,
                    "topics": sorted(self._db.name_of(conn, t) for t in topics.get(g, ())),
                    "partitions": parts.get(g, 0),
                })
        out.sort(key=lambda r: r["group"])
        return out

    def topics_latest(self, cluster: str) -> list[dict[str, Any]]:
        """Summary of every topic in the latest cycle that carried data, sorted by topic name."""
        with self._db.read() as conn:
            latest = self._latest_data_cycle(conn, cluster)
            if latest is None:
                return []
            _, cycle, at = latest
            out = [
                {
                    "topic": self._db.name_of(conn, t), "at": at, "partitions": n,
                    "produce_rate": pr, "end_offset_sum": eos, "message_count": mc,
                    "under_replicated": ur, "offline": off,
                }
                for t, n, pr, eos, mc, ur, off in conn.execute(
                    "SELECT topic, partitions, produce_rate, end_offset_sum, message_count,"
                    " under_replicated, offline FROM topic_summary WHERE cycle = ?",
                    (cycle,),
                )
            ]
        out.sort(key=lambda r: r["topic"])
        return out

    # ------------------------------------------------------------------------------------------
    # reading: ranges (server-side downsampling)
    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _bucket_expr(
        conn: sqlite3.Connection, cid: int, start: float, end: float, max_points: int,
        data_only: bool,
    ) -> tuple[str, tuple]:
        """SQL expression (over alias c) grouping cycles into at most max_points buckets.

        When the range holds no more cycles than max_points each cycle is its own bucket, so
        small ranges come back unaggregated; otherwise the span between the first and last cycle
        in the range is cut into max_points equal buckets.
        """
        if max_points < 1:
            raise ValueError("max_points must be >= 1")
        n, first, last = conn.execute(
            "SELECT count(*), min(at), max(at) FROM cycles"
            " WHERE cluster = ? AND at >= ? AND at <= ?"
            + (" AND has_data = 1" if data_only else ""),
            (cid, start, end),
        ).fetchone()
        if n <= max_points:
            return "c.id", ()
        # Buckets span the data actually stored in the range, so a 24 h request over 2 h of
        # data still gets max_points points.
        width = (last - first) / max_points
        return "min(CAST((c.at - ?) / ? AS INTEGER), ?)", (first, width, max_points - 1)

    def _series(
        self, cluster: str, start: float, end: float, max_points: int, *, data_only: bool,
        build: Callable[[sqlite3.Connection, int, str, tuple], list],
    ) -> list:
        if end < start:
            return []
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return []
            bucket, bparams = self._bucket_expr(conn, cid, start, end, max_points, data_only)
            return build(conn, cid, bucket, bparams)

    def group_series(
        self, cluster: str, group: str, start: float, end: float, max_points: int = 500
    ) -> list[GroupPoint]:
        """Group summary over [start, end], oldest first, at most max_points rows.

        Keys: at, lag, time_lag_seconds, time_lag_method, consume_rate, produce_rate,
        eta_seconds, status.
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            gid = self._db.name_id(conn, group)
            if gid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), max(g.lag), max(g.time_lag), max(g.method),"
                " avg(g.consume_rate), avg(g.produce_rate), max(g.eta), max(g.status),"
                " max(coalesce(g.readable_lag, g.lag)), max(coalesce(g.lower_bound, 0))"
                " FROM cycles AS c CROSS JOIN group_summary AS g"
                " ON g.cycle = c.id AND g.grp = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b ORDER BY 2",
                (*bparams, gid, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "lag": lag, "readable_lag": readable, "time_lag_seconds": to_seconds(tl),
                 "time_lag_method": method_name(m), "time_lag_lower_bound": bool(lower),
                 "consume_rate": cr, "produce_rate": pr, "eta_seconds": eta,
                 "status": status_name(st)}
                for _, at, lag, tl, m, cr, pr, eta, st, readable, lower in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def partition_lag_series(
        self, cluster: str, group: str, start: float, end: float, max_points: int = 200
    ) -> list[PartitionLagPoint]:
        """Per-partition lag of a group over [start, end] (partition x time heatmap): at most
        max_points rows per (topic, partition), ordered by at, topic, partition. Bucketed lag and
        time lag are the max in the bucket.
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            gid = self._db.name_id(conn, group)
            if gid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), p.topic, p.partition, max(p.lag),"
                " max(p.time_lag)"
                " FROM cycles AS c CROSS JOIN group_partitions AS p"
                " ON p.cycle = c.id AND p.grp = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b, p.topic, p.partition",
                (*bparams, gid, cid, start, end),
            ).fetchall()
            out = [
                {"at": at, "topic": self._db.name_of(conn, t), "partition": p, "lag": lag,
                 "time_lag_seconds": to_seconds(tl)}
                for _, at, t, p, lag, tl in rows
            ]
            out.sort(key=lambda r: (r["at"], r["topic"], r["partition"]))
            return out

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def topic_series(
        self, cluster: str, topic: str, start: float, end: float, max_points: int = 500
    ) -> list[TopicPoint]:
        """Topic summary over [start, end], oldest first, at most max_points rows.

        Keys: at, produce_rate (avg in bucket), end_offset_sum, message_count, under_replicated,
        offline (max in bucket).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            tid = self._db.name_id(conn, topic)
            if tid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), avg(t.produce_rate), max(t.end_offset_sum),"
                " max(t.message_count), max(t.under_replicated), max(t.offline)"
                " FROM cycles AS c CROSS JOIN topic_summary AS t"
                " ON t.cycle = c.id AND t.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " GROUP BY b ORDER BY 2",
                (*bparams, tid, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "produce_rate": pr, "end_offset_sum": eos, "message_count": mc,
                 "under_replicated": ur, "offline": off}
                for _, at, pr, eos, mc, ur, off in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def partition_rate_series(
        self, cluster: str, topic: str, start: float, end: float, max_points: int = 200
    ) -> list[PartitionRatePoint]:
        """Produce rate per partition of a topic over [start, end], at most max_points rows per
        partition, ordered by at, partition.

        Keys: at, partition, end_offset, rate (messages/s since the previous point of the same
        partition; the first point uses the last sample before `start` if there is one; None
        when the offset went backwards, e.g. topic recreated).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            tid = self._db.name_id(conn, topic)
            if tid is None:
                return []
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), o.partition, max(o.latest)"
                " FROM cycles AS c CROSS JOIN partition_offsets AS o"
                " ON o.cycle = c.id AND o.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " AND o.latest IS NOT NULL"
                " GROUP BY b, o.partition ORDER BY 2, 3",
                (*bparams, tid, cid, start, end),
            ).fetchall()
            prev: dict[int, tuple[float, int]] = {}
            before = conn.execute(
                "SELECT id, at FROM cycles WHERE cluster = ? AND at < ? AND has_data = 1"
                " ORDER BY at DESC LIMIT 1",
                (cid, start),
            ).fetchone()
            if before is not None:
                for p, latest in conn.execute(
                    "SELECT partition, latest FROM partition_offsets"
                    " WHERE cycle = ? AND topic = ? AND latest IS NOT NULL",
                    (before[0], tid),
                ):
                    prev[p] = (before[1], latest)
            out = []
            for _, at, p, latest in rows:
                rate = None
                last = prev.get(p)
                if last is not None and at > last[0] and latest >= last[1]:
                    rate = (latest - last[1]) / (at - last[0])
                prev[p] = (at, latest)
                out.append({"at": at, "partition": p, "end_offset": latest, "rate": rate})
            return out

        return self._series(cluster, start, end, max_points, data_only=True, build=build)

    def cluster_series(
        self, cluster: str, start: float, end: float, max_points: int = 500
    ) -> list[ClusterPoint]:
        """Cycle outcomes and totals over [start, end] (failed cycles included), oldest first.

        Keys: at, ok (False if any cycle in the bucket failed or was stale), total_lag and
        max_time_lag_seconds (max in bucket; None for failed cycles), groups, brokers (min in
        bucket; None for failed cycles).
        """

        def build(conn: sqlite3.Connection, cid: int, bucket: str, bparams: tuple) -> list:
            rows = conn.execute(
                f"SELECT {bucket} AS b, max(c.at), min(c.ok), max(c.total_lag),"
                " max(c.max_time_lag), max(c.groups), min(c.brokers)"
                " FROM cycles AS c WHERE c.cluster = ? AND c.at >= ? AND c.at <= ?"
                " GROUP BY b ORDER BY 2",
                (*bparams, cid, start, end),
            ).fetchall()
            return [
                {"at": at, "ok": bool(ok), "total_lag": tl, "max_time_lag_seconds": mtl,
                 "groups": g, "brokers": b}
                for _, at, ok, tl, mtl, g, b in rows
            ]

        return self._series(cluster, start, end, max_points, data_only=False, build=build)

    def commit_history(
        self, cluster: str, group: str, start: float, end: float, limit: int = 10
    ) -> list[CommitPoint]:
        """Commits of `group` seen within [start, end] (see `HistoryReader.commit_history`): a
        partition's committed offset each time it changed from one stored cycle to the next,
        dated by that cycle, with the cycle before as the lower end of when it happened."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if end < start:
            return []
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            gid = self._db.name_id(conn, group)
            if cid is None or gid is None:
                return []
            rows = conn.execute(
                "SELECT p.topic, p.partition, c.at, p.committed"
                " FROM cycles AS c CROSS JOIN group_partitions AS p ON p.cycle = c.id AND p.grp = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1 AND p.committed >= 0"
                " ORDER BY p.topic, p.partition, c.at",
                (gid, cid, start, end),
            ).fetchall()
            names = {t: self._db.name_of(conn, t) for t in {r[0] for r in rows}}
        out: list[CommitPoint] = []
        for (topic, partition), observed in groupby(rows, key=lambda r: (r[0], r[1])):
            out.extend(commit_points(names[topic], partition, ((at, c) for _, _, at, c in observed), limit))
        out.sort(key=lambda c: (c["topic"], c["partition"], c["at"]))
        return out

    # ------------------------------------------------------------------------------------------
    # reading: windows for the alert engine
    # ------------------------------------------------------------------------------------------

    def window(
        self, cluster: str, kind: str, key: str | None, seconds: float, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Unaggregated rows of the last `seconds` up to `now` (inclusive), oldest first.

        kind "group": the group's summary rows (keys as in groups_latest, without topics);
        kind "topic": the topic's summary rows (keys as in topic_series);
        kind "cluster": cycles rows, failed ones included (key ignored): at, ok, stale, error,
        brokers (None for failed cycles), total_lag, max_time_lag_seconds, groups.
        These cover the kinds and fields of ``alerts.inputs.AlertInputs.window``.
        """
        now = float(self._clock() if now is None else now)
        start = now - float(seconds)
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return []
            if kind == "cluster":
                return [
                    {"at": at, "ok": bool(ok), "stale": bool(stale), "error": err,
                     "brokers": b, "total_lag": tl, "max_time_lag_seconds": mtl, "groups": g}
                    for at, ok, stale, err, b, tl, mtl, g in conn.execute(
                        "SELECT at, ok, stale, error, brokers, total_lag, max_time_lag, groups"
                        " FROM cycles"
                        " WHERE cluster = ? AND at >= ? AND at <= ? ORDER BY at",
                        (cid, start, now),
                    )
                ]
            if kind not in ("group", "topic"):
                raise ValueError(f"window kind must be 'group', 'topic' or 'cluster', not {kind!r}")
            nid = self._db.name_id(conn, key) if key is not None else None
            if nid is None:
                return []
            if kind == "group":
                rows = conn.execute(
                    "SELECT c.at, g.lag, g.time_lag, g.method, g.consume_rate, g.produce_rate,"
                    " g.eta, g.status, g.state, g.members, g.is_empty, g.fetched_at, g.error,"
                    " coalesce(g.readable_lag, g.lag), coalesce(g.lower_bound, 0)"
                    " FROM cycles AS c CROSS JOIN group_summary AS g"
                    " ON g.cycle = c.id AND g.grp = ?"
                    " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                    " ORDER BY c.at",
                    (nid, cid, start, now),
                ).fetchall()
                return [
                    {"at": at, "lag": lag, "readable_lag": readable, "time_lag_seconds": to_seconds(tl),
                     "time_lag_method": method_name(m), "time_lag_lower_bound": bool(lower),
                     "consume_rate": cr, "produce_rate": pr,
                     "eta_seconds": eta, "status": status_name(st),
                     "state": self._db.name_of(conn, state), "members": members,
                     "is_empty": bool(is_empty), "fetched_at": fetched, "error": err}
                    for at, lag, tl, m, cr, pr, eta, st, state, members, is_empty, fetched, err,
                    readable, lower in rows
                ]
            rows = conn.execute(
                "SELECT c.at, t.partitions, t.produce_rate, t.end_offset_sum, t.message_count,"
                " t.under_replicated, t.offline"
                " FROM cycles AS c CROSS JOIN topic_summary AS t"
                " ON t.cycle = c.id AND t.topic = ?"
                " WHERE c.cluster = ? AND c.at >= ? AND c.at <= ? AND c.has_data = 1"
                " ORDER BY c.at",
                (nid, cid, start, now),
            ).fetchall()
            return [
                {"at": at, "partitions": n, "produce_rate": pr, "end_offset_sum": eos,
                 "message_count": mc, "under_replicated": ur, "offline": off}
                for at, n, pr, eos, mc, ur, off in rows
            ]

    def window_peaks(self, cluster: str, kind: str, field: str, seconds: float,
                     now: float | None = None) -> dict[str, float]:
        """{key: the greatest finite `field` among `window(cluster, kind, key, seconds, now)`'s
        rows}, for every key with one: what a rule asking the same of every topic reads
        (`alerts.kinds.topic_produce_stopped`), without a row per topic and cycle in Python. The
        maxima of the window's time buckets are kept between calls, with the cycles they came from
        (`monitor.storage.peaks`): a call reads the rows of the buckets whose cycles changed, not
        the whole window. Kind "topic" only; ValueError for another kind or field."""
        column = _PEAK_COLUMNS.get(kind, {}).get(field)
        if column is None:
            raise ValueError(f"no peaks of {kind!r} windows' {field!r}")
        now = float(self._clock() if now is None else now)
        seconds = float(seconds)
        with self._db.read() as conn:
            cid = self._db.name_id(conn, cluster)
            if cid is None:
                return {}
            cycles = conn.execute(
                "SELECT id, at FROM cycles WHERE cluster = ? AND at >= ? AND at <= ? AND has_data = 1"
                " ORDER BY at, id", (cid, now - seconds, now)).fetchall()
            # the finite values only, as the rows' readers take them (collectors.values)
            query = (f"SELECT topic, max(CASE WHEN abs({column}) <= 1.7976931348623157e308 THEN {column} END)"
                     " FROM topic_summary WHERE cycle IN ({}) GROUP BY topic")

            def read(ids: Sequence[int]) -> dict[int, float]:
                maxima: dict[int, float] = {}
                for i in range(0, len(ids), _IDS_PER_QUERY):
                    chunk = ids[i:i + _IDS_PER_QUERY]
                    found = {topic: float(peak) for topic, peak in
                             conn.execute(query.format(",".join("?" * len(chunk))), chunk) if peak is not None}
                    merge_maxima(maxima, found)
                return maxima

            peaks = self._peaks.peaks((cid, column, seconds), cycles, bucket_width(seconds), read)
            names = self._db.all_names(conn)
            return {names[nid]: peak for nid, peak in peaks.items()}


_IDS_PER_QUERY = 500  # cycle ids per `IN (...)`: well under SQLite's bound on parameters

# The columns `window_peaks` reads, per kind: a field of `window`'s rows -> its column.
_PEAK_COLUMNS = {"topic": {"produce_rate": "produce_rate", "end_offset_sum": "end_offset_sum",
                           "message_count": "message_count", "under_replicated": "under_replicated",
                           "offline": "offline"}}


def _insert_cycle(conn: sqlite3.Connection, cid: int, at: float, state: ClusterState,
                  rows: _CycleRows) -> int | None:
    """The cycles row; its id, or None when (cluster, at) is stored already."""
    raw = state.raw
    has_data = rows.has_data
    cur = conn.execute(
        "INSERT OR IGNORE INTO cycles(cluster, at, ok, stale, has_data, error,"
        " offsets_fetched_at, duration, brokers, groups, total_lag, max_time_lag)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            cid, at, int(raw.ok and not state.stale), int(state.stale), int(has_data), raw.error,
            raw.end_offsets_fetched_at or None,
            max(0.0, raw.finished_at - raw.started_at) if raw.finished_at else None,
            len(raw.brokers) if not state.stale and raw.ok else None,
            len(rows.group_summary) if has_data else None,
            rows.total_lag if has_data else None,
            rows.max_time_lag,
        ),
    )
    return cur.lastrowid if cur.rowcount else None


# The fields of a PartitionLag a partition row stores, in the row's order, and its topic's alone
_STORED = field_indices("topic", "partition", "committed_offset", "lag", "time_lag_seconds", "time_lag_method",
                        "status", "readable_lag", "time_lag_lower_bound", "uncommitted")
_TOPIC = field_indices("topic")

# Sort keys (C-level getters)
_first, _first_two, _first_three = itemgetter(0), itemgetter(0, 1), itemgetter(0, 1, 2)


class _CycleRows:
    """The data rows of one cycle, in column order without the leading cycle id.

    The rows of partitions (each group's and each topic's: 20,000 at 10,000 partitions) are not
    built all at once: `insert` makes them in key order, group by group and topic by topic, a
    statement's worth at a time. Built whole and sorted they were ~2 MB of the cycle's peak, and
    the parent's allocator keeps what a cycle's peak took (docs/performance.md, the thirty-second
    pass). Every name id is looked up here, before the inserts start."""

    def __init__(self) -> None:
        self.group_summary: list[tuple] = []
        self.topic_summary: list[tuple] = []
        self.total_lag = 0
        self.max_time_lag: float | None = None
        self._groups: list[tuple[int, GroupLag]] = []  # (id, group) of the view's groups with partitions, by id
        self._topic_ids: dict[str, int] = {}  # of every topic a partition row names
        self._without_lag: list[tuple] = []  # committed offsets the view lacks (rare)
        self._topics: list[tuple[int, Topic]] = []  # (id, topic) of the snapshot, by id

    @classmethod
    def of(cls, state: ClusterState, nid: NameIds) -> _CycleRows:
        rows = cls()
        partitions = rows._add_groups(state.lag.groups, nid)
        rows._add_offsets_without_lag(state.raw, nid, partitions)
        rows._topics = sorted(((nid(t.name), t) for t in state.raw.topics), key=_first)
        rows._add_topics(state.lag.topics, state.raw, nid)
        return rows

    @property
    def has_data(self) -> bool:
        return bool(self.group_summary or self._groups or self._without_lag
                    or any(t.partitions for _, t in self._topics) or self.topic_summary)

    def _add_groups(self, groups: tuple[GroupLag, ...], nid: NameIds) -> dict[int, int]:
        """Summary rows of the derived view, the groups and topics their partition rows will
        name; returns partitions stored per group."""
        method_code, status_code = METHOD_CODE.get, STATUS_CODE.get
        topics: set[str] = set()
        partitions: dict[int, int] = {}
        for g in groups:
            gid = nid(g.group)
            self.total_lag += g.lag or 0
            tl = g.time_lag_seconds
            if tl is not None and (self.max_time_lag is None or tl > self.max_time_lag):
                self.max_time_lag = tl
            self.group_summary.append((
                gid, g.lag, to_ms(tl), method_code(g.time_lag_method), g.consume_rate,
                g.produce_rate, g.eta_seconds, status_code(g.status), nid(g.state), g.members,
                int(g.is_empty), g.fetched_at, g.error, g.readable_lag,
                int(g.time_lag_lower_bound), g.uncommitted_partitions,
            ))
            if g.partitions:
                self._groups.append((gid, g))
                topics.update(*partition_columns(g.partitions, _TOPIC))
            partitions[gid] = partitions.get(gid, 0) + len(g.partitions)
        self._topic_ids = {topic: nid(topic) for topic in topics}
        self._groups.sort(key=_first)  # stable: a name twice (a malformed view) keeps its last
        return partitions

    def _group_partition_rows(self) -> Iterator[tuple]:
        """The view's partition rows in key order (group id, topic id, partition)."""
        method_code, status_code, tids = METHOD_CODE.get, STATUS_CODE.get, self._topic_ids
        for gid, g in self._groups:
            # the columns of the fields stored (derive's own): 100,000s of partitions a cycle on a
            # large cluster, and no record made for each
            rows = [(gid, tids[topic], partition, offset,
                     lag, None if tl is None else round(tl * 1000), method_code(method),  # to_ms
                     status_code(status), left, 1 if low else 0, 1 if unc else 0)
                    for topic, partition, offset, lag, tl, method, status, left, low, unc in zip(
                        *partition_columns(g.partitions, _STORED))]
            rows.sort(key=_first_three)
            yield from rows

    def _add_offsets_without_lag(self, raw: KafkaClusterSnapshot, nid: NameIds,
                                 partitions: dict[int, int]) -> None:
        """Committed offsets of the raw snapshot that the view lacks (group not in the view, or
        partitions missing), stored without lag so replay still sees every committed offset."""
        seen: dict[int, set[tuple[int, int]]] | None = None
        for g in raw.groups:
            gid = nid(g.name)
            if partitions.get(gid, -1) >= len(g.offsets):
                continue
            if seen is None:  # rare path: index the view's partition rows, once
                seen = {}
                for vgid, vg in self._groups:
                    seen.setdefault(vgid, set()).update((self._topic_ids[p.topic], p.partition)
                                                         for p in vg.partitions)
            have = seen.setdefault(gid, set())
            for o in g.offsets:
                tid = nid(o.topic)
                if (tid, o.partition) not in have:
                    have.add((tid, o.partition))
                    self._without_lag.append((gid, tid, o.partition, o.offset) + (None,) * 7)

    def _partition_offset_rows(self) -> Iterator[tuple]:
        """Each topic's partition rows in key order (topic id, partition)."""
        for tid, t in self._topics:
            rows = [(tid, p.partition, p.earliest_offset, p.latest_offset) for p in t.partitions]
            rows.sort(key=_first_two)
            yield from rows

    def _add_topics(self, topics: tuple[TopicRates, ...], raw: KafkaClusterSnapshot, nid: NameIds) -> None:
        topic_ids = {t.name: t.topic_id for t in raw.topics}
        for t in topics:
            self.topic_summary.append((
                nid(t.topic), t.partitions, t.produce_rate, t.end_offset_sum,
                t.message_count, t.under_replicated, t.offline, topic_ids.get(t.topic),
            ))

    def insert(self, conn: sqlite3.Connection, cycle: int) -> None:
        # Rows in key order fill each B-tree page by page at its right edge (dense pages).
        # OR REPLACE: a duplicate key inside one snapshot (a malformed input) keeps the last.
        self.group_summary.sort(key=_first)
        self.topic_summary.sort(key=_first)
        self._without_lag.sort(key=_first_three)
        for table, rows, width in (
            ("group_summary", self.group_summary, 16),
            ("group_partitions", self._group_partition_rows(), 11),
            ("group_partitions", self._without_lag, 11),
            ("partition_offsets", self._partition_offset_rows(), 4),
            ("topic_summary", self.topic_summary, 8),
        ):
            _insert_rows(conn, f"INSERT OR REPLACE INTO {table} VALUES", cycle, width, rows)


# SQLite before 3.32 allows 999 parameters per statement (later ones 32,766)
_PARAMETERS_PER_STATEMENT = 999


def _insert_rows(conn: sqlite3.Connection, insert: str, cycle: int, width: int, rows: Iterable[tuple]) -> None:
    """`insert` (up to its VALUES) of `cycle` followed by each of `rows` (`width` values), as many
    rows per statement as the parameters allow: one statement per row spends about as long again
    in the statement's own work (measured at 100,000 rows: 275-340 ms -> 110-230 ms). The rows go
    in in order, each statement's parameters built only when it is executed.

    The cycle is every row's first value and the statement's first parameter (`?1` in each row),
    not part of its text: the texts are the same every cycle, so each is compiled once and the
    connection's statement cache (128 statements) holds one of it. With the cycle in the text,
    every cycle compiled new statements of up to 999 parameters and the cache kept them: 3.4 MB of
    SQLite's memory after 8 cycles at 1,000 groups x 10,000 partitions, and growing (measured)."""
    per = max(1, (_PARAMETERS_PER_STATEMENT - 1) // width)
    rows = iter(rows)
    rest: list[tuple] = []  # the last rows, fewer than a statement's worth

    def statements() -> Iterator[tuple]:
        while len(chunk := list(islice(rows, per))) == per:
            yield (cycle, *chain.from_iterable(chunk))
        rest.extend(chunk)

    conn.executemany(f"{insert} {_numbered_rows(per, width)}", statements())
    if rest:
        conn.executemany(f"{insert} (?{',?' * width})", ((cycle, *row) for row in rest))


@functools.cache
def _numbered_rows(count: int, width: int) -> str:
    """`count` VALUES tuples of `width` + 1 numbered parameters, `?1` first in each: `(?1,?2,?3),(?1,?4,?5)`."""
    return ",".join("(?1," + ",".join(f"?{2 + i * width + j}" for j in range(width)) + ")" for i in range(count))
