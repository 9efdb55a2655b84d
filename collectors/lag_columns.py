"""A derived view's partitions in columns: every group's `PartitionLag` fields of one cycle, a list
per field, and each group's partitions (`GroupPartitions`) a run of them.

Derive makes a cycle's `PartitionLag`s here, not as a record per partition: 10,000 records of
14 fields, made every cycle and kept until the next, were 1.5 MB of the parent's pymalloc arenas
at 1,000 groups x 10,000 partitions, and with the last cycle's view beside them they set the
arenas' high-water mark (docs/performance.md, the thirty-fifth pass). A column is one block of
references, freed whole with its view. The cycle's own readers (the history, lag against
retention) read the columns (`partition_columns`, `lag_fields`); the API and the dashboard read
a group's records, made when read.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from itertools import chain, repeat

from collectors.column_records import ColumnRecords
from collectors.models import GroupLag, PartitionLag, Status

__all__ = ["GroupPartitions", "LagColumns", "field_indices", "lag_fields", "partition_columns", "partition_fields"]

# A PartitionLag from its 14 fields in order, in C (the named tuple's `_make` is a Python call).
_partition_lag = partial(tuple.__new__, PartitionLag)
FIELDS = len(PartitionLag._fields)  # 14; the group's name is the first, kept once per run


def field_indices(*names: str) -> tuple[int, ...]:
    """Where PartitionLag's fields `names` are among its fields (the group's name is 0)."""
    return tuple(map(PartitionLag._fields.index, names))


_RATE, _STATUS = field_indices("consume_rate", "status")


class LagColumns:
    """The fields of a cycle's partitions but the group's name, a list each, filled run by run."""

    __slots__ = ("columns", "size")

    def __init__(self, capacity: int = 0) -> None:
        # sized once for every position of the cycle (a list grown item by item is copied as it grows)
        self.columns = tuple([None] * capacity for _ in range(FIELDS - 1))
        self.size = 0

    @property
    def rate(self) -> list:
        return self.columns[_RATE - 1]

    @property
    def status(self) -> list[Status]:
        return self.columns[_STATUS - 1]

    def put(self, rows: Sequence[tuple]) -> tuple[int, int]:
        """Append one group's partitions (each a PartitionLag's fields but the group's); returns
        where they are: (start, stop)."""
        start = self.size
        stop = self.size = start + len(rows)
        if rows:
            for column, values in zip(self.columns, zip(*rows)):
                column[start:stop] = values  # past the capacity, the list grows
        return start, stop

    def finish(self) -> None:
        """Drop the capacity left unused (positions without a measurable lag)."""
        for column in self.columns:
            del column[self.size:]

    def fields(self, group: str, start: int, stop: int) -> Iterable[tuple]:
        return zip(repeat(group, stop - start), *(column[start:stop] for column in self.columns))

    def records(self, group: str, start: int, stop: int) -> tuple[PartitionLag, ...]:
        return tuple(map(_partition_lag, self.fields(group, start, stop)))


class GroupPartitions(ColumnRecords):
    """`GroupLag.partitions` as derive makes it: one group's run of the cycle's `LagColumns`."""

    __slots__ = ("_group",)

    def __init__(self, columns: LagColumns, group: str, start: int, stop: int):
        super().__init__(columns, start, stop)
        self._group = group

    def _records(self, start: int, stop: int) -> tuple[PartitionLag, ...]:
        return self._columns.records(self._group, start, stop)

    def fields(self) -> Iterable[tuple]:
        return self._columns.fields(self._group, self._start, self._stop)

    def columns(self, fields: Sequence[int]) -> list[list]:
        """The group's run of the columns of `fields` (indices into a PartitionLag's, not 0)."""
        start, stop, columns = self._start, self._stop, self._columns.columns
        return [columns[i - 1][start:stop] for i in fields]


def partition_fields(partitions: Sequence[PartitionLag]) -> Iterable[tuple]:
    """Each of a group's partitions as a PartitionLag's 14 fields in order, without a record made
    where derive made them."""
    return partitions.fields() if isinstance(partitions, GroupPartitions) else partitions


def partition_columns(partitions: Sequence[PartitionLag], fields: Sequence[int]) -> list[Sequence]:
    """A group's partitions as columns, one per field asked for (an index into a PartitionLag's
    fields, not the group's name): slices of derive's columns where it made them."""
    if isinstance(partitions, GroupPartitions):
        return partitions.columns(fields)
    every = tuple(zip(*partitions)) or ((),) * FIELDS
    return [every[i] for i in fields]


def lag_fields(groups: Sequence[GroupLag]) -> list[Sequence] | None:
    """The 14 fields of every partition of `groups` (groups in order), a sequence per field; None
    when they have none. Derive's own columns when the groups' partitions are its runs, in order."""
    runs = [g.partitions for g in groups if g.partitions]
    if not runs:
        return None
    first = runs[0]
    if all(type(run) is GroupPartitions for run in runs):
        lags = first._columns
        if all(run._columns is lags for run in runs) and all(
                a._stop == b._start for a, b in zip(runs, runs[1:])):
            start, stop = first._start, runs[-1]._stop
            whole = start == 0 and stop == lags.size
            names = list(chain.from_iterable(repeat(run._group, len(run)) for run in runs))
            return [names, *(column if whole else column[start:stop] for column in lags.columns)]
    return list(zip(*chain.from_iterable(runs)))
