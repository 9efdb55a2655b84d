"""Committed-offset windows in columns: a row per (group, topic, partition), numpy arrays.

Each row keeps the last ``width`` observations ``(at, committed offset, lag)`` right-aligned (the
newest in the last column, ``n`` valid), and ``changed_at``, the first time the current committed
value was observed. A cycle's observations of every group are appended in one call, and
:mod:`collectors.kafka.vector_rules` reads the rows of a cycle at once. Rows of forgotten series
are reused. 24 bytes per observation and 12 per row: at 10 observations, ~250 bytes per
(group, partition), where an object with three arrays per series took ~600.

Which row belongs to which series is the caller's (``OffsetWindows``) business.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CommitColumns"]


class CommitColumns:
    __slots__ = ("width", "t", "o", "lag", "n", "changed_at", "_free", "_used")

    def __init__(self, width: int, capacity: int = 256) -> None:
        self.width = width
        self.t = np.full((capacity, width), np.nan)  # observation times; NaN left of the valid ones
        self.o = np.zeros((capacity, width), np.int64)  # committed offsets
        self.lag = np.full((capacity, width), -1, np.int64)  # lag at that time; -1 = unknown
        self.n = np.zeros(capacity, np.int32)  # valid observations (the last n columns)
        self.changed_at = np.zeros(capacity)
        self._free: list[int] = []
        self._used = 0  # rows [0, _used) were handed out at least once

    # -- rows ----------------------------------------------------------------------------------

    def allocate(self) -> int:
        if self._free:
            return self._free.pop()
        if self._used == len(self.n):
            self._grow()
        self._used += 1
        return self._used - 1

    def release(self, row: int) -> None:
        self.t[row] = np.nan
        self.n[row] = 0
        self._free.append(row)

    def _grow(self) -> None:
        # A quarter more, not double: at most a fifth of the rows lie unused (the columns are
        # most of the windows' memory: ~24 MB at 100,000 series, where doubling left up to 24 MB
        # more unused); the copies this costs happen while series are first seen.
        extra = max(256, len(self.n) // 4)
        self.t = np.concatenate([self.t, np.full((extra, self.width), np.nan)])
        self.o = np.concatenate([self.o, np.zeros((extra, self.width), np.int64)])
        self.lag = np.concatenate([self.lag, np.full((extra, self.width), -1, np.int64)])
        self.n = np.concatenate([self.n, np.zeros(extra, np.int32)])
        self.changed_at = np.concatenate([self.changed_at, np.zeros(extra)])

    # -- observations --------------------------------------------------------------------------

    def append(self, rows, at, offsets, lags) -> int:
        """Append one observation per row (``at`` a time per row, or one for all); returns how
        many were dropped for being older than their row's newest observation.

        One at the same time as the newest replaces it. The committed value changes
        (``changed_at = at``) when it differs from the previous observation's, or is the first.
        """
        rows = np.asarray(rows, np.intp)
        if len(rows) == 0:
            return 0
        at = np.broadcast_to(np.asarray(at, np.float64), rows.shape)
        offsets = np.asarray(offsets, np.int64)
        lags = np.asarray(lags, np.int64)
        # One series observed twice: in order, one at a time. (Sorted and compared, not
        # np.unique: that imports numpy.ma, ~2 MB the monitor has no other use for.)
        ordered = np.sort(rows)
        if (ordered[1:] == ordered[:-1]).any():
            return sum(self.append(rows[i:i + 1], at[i:i + 1], offsets[i:i + 1], lags[i:i + 1])
                       for i in range(len(rows)))
        n = self.n[rows]
        newest = self.t[rows, -1]  # NaN for an empty row: neither later nor the same
        empty = n == 0
        later = empty | (at > newest)
        same = at == newest
        if same.any():
            r, off = rows[same], offsets[same]
            moved = (n[same] == 1) | (self.o[r, -2] != off)
            self.changed_at[r[moved]] = at[same][moved]
            self.o[r, -1] = off
            self.lag[r, -1] = lags[same]
        if later.any():
            r, off, when = rows[later], offsets[later], at[later]
            moved = empty[later] | (self.o[r, -1] != off)
            self.changed_at[r[moved]] = when[moved]
            for column, value in ((self.t, when), (self.o, off), (self.lag, lags[later])):
                column[r, :-1] = column[r, 1:]
                column[r, -1] = value
            self.n[r] = np.minimum(n[later] + 1, self.width)
        return int(len(rows) - np.count_nonzero(later) - np.count_nonzero(same))

    def set(self, row: int, points, changed_at: float) -> None:
        """Replace a row's observations by ``points`` ((at, offset, lag), oldest first, at most
        ``width``, lag -1 when unknown)."""
        k = len(points)
        self.t[row] = np.nan
        if k:
            self.t[row, -k:] = [p[0] for p in points]
            self.o[row, -k:] = [p[1] for p in points]
            self.lag[row, -k:] = [p[2] for p in points]
        self.n[row] = k
        self.changed_at[row] = changed_at

    def points(self, row: int) -> list[tuple[float, int, int]]:
        """A row's observations, oldest first: (at, offset, lag), lag -1 when unknown."""
        k = int(self.n[row])
        if k == 0:
            return []
        return list(zip(self.t[row, -k:].tolist(), self.o[row, -k:].tolist(), self.lag[row, -k:].tolist()))

    def window(self, rows):
        """(t, o, lag, n) of ``rows``: copies."""
        rows = np.asarray(rows, np.intp)
        return self.t[rows], self.o[rows], self.lag[rows], self.n[rows]
