"""A run of records kept in columns that many runs share, its records made each time it is read.

Derive keeps a cycle's per-partition records this way (a group's `PartitionLag`s, a group's
lagging positions against retention): a cycle's own readers (the history, lag against retention)
read the columns, and only the API and the dashboard's pages read records, a group at a time.
A record object per partition, made every cycle and kept until the next, was most of the
parent's peak in derive (docs/performance.md, the thirty-fifth pass).

Subclasses say how the records of a span of the columns are made (`_records`); a run is equal to
the tuple of its records, and copied and pickled as that tuple.
"""
from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ColumnRecords"]


class ColumnRecords(Sequence):
    """Records `start` to `stop` of `columns`, made when read."""

    __slots__ = ("_columns", "_start", "_stop")

    def __init__(self, columns, start: int, stop: int):
        self._columns, self._start, self._stop = columns, start, stop

    def _records(self, start: int, stop: int) -> tuple:
        """The records `start` to `stop` of the columns."""
        raise NotImplementedError

    def records(self) -> tuple:
        return self._records(self._start, self._stop)

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.records()[index]
        at = range(self._start, self._stop)[index]  # IndexError past either end, as a tuple's
        return self._records(at, at + 1)[0]

    def __iter__(self):
        return iter(self.records())

    def __eq__(self, other) -> bool:
        if isinstance(other, ColumnRecords):
            other = other.records()
        return self.records() == other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.records())

    def __repr__(self) -> str:
        return repr(self.records())

    def __reduce__(self):
        return tuple, (self.records(),)
