"""A cluster snapshot from the collector's child process to `run`: what the parent already holds is
named, not sent again.

From one cycle to the next the child keeps a still group's very tuple of positions and an idle
topic's very tuple of partitions (`collectors.kafka.positions`, `KafkaCollector._topic_models`).
Pickled whole, they crossed the socket in full every cycle and the parent made them again: at
1,000 groups x 10,000 partitions, ~7 ms to pickle in the child and ~11 ms to unpickle in the
parent, for records equal to those it already held. Here the child sends such a tuple as its
owner's name (`collectors.models.snapshot_columns` with what the parent holds), and the parent
puts in the tuple it decoded for that name the cycle before: the snapshot decoded equals the one
collected, and what did not change stays the same objects in the parent as well.

The child names only records it sent in the two snapshots before (see `SnapshotSender`).
The two sides agree on what the parent holds by number. Each snapshot sent has one; the parent
asks for the next naming the number of the last one it decoded (`SnapshotReceiver.holds`), and
the child names records only when that is the number of the last snapshot it sent. Otherwise (a
new child, a cycle the parent gave up on, a first cycle) everything is sent.
"""
from __future__ import annotations

import pickle

from collectors.models import Held, KafkaClusterSnapshot, records_by_name, snapshot_columns, snapshot_from_columns

__all__ = ["SnapshotReceiver", "SnapshotSender", "WireError"]


class WireError(ValueError):
    """Bytes that do not decode to a snapshot against what this receiver holds."""


class SnapshotSender:
    """The child's side: encodes each snapshot against the last one sent, when the parent holds it.

    It keeps a reference to the records it may name next time: those of the last snapshot that
    were in the one before as well (the collector keeps a still group's and an idle topic's from
    cycle to cycle, so holding them costs nothing). Records made anew every cycle (a group whose
    positions are read) are not held, so they are not kept alive a cycle longer: at 10,000 groups
    that was 8-9 MB of the child. Which ones were sent before is told by their ids alone; the ids
    only choose what to hold, and naming is by the held object itself.

    The child ends when a send fails (its parent is gone), so a snapshot counts as sent once it is
    encoded."""

    def __init__(self) -> None:
        self._number = 0  # of the last snapshot encoded; 0: none yet
        self._held: Held = {}  # records of snapshot `_number` that may be named next
        self._sent_ids: dict[str, dict[str, int]] = {}  # id of each owner's records in snapshot `_number`

    def encode(self, snapshot: KafkaClusterSnapshot, parent_holds: int | None) -> bytes:
        based_on = self._number if self._number and parent_holds == self._number else None
        columns = snapshot_columns(snapshot, self._held if based_on is not None else None)
        self._number += 1
        sent, before = records_by_name(snapshot), self._sent_ids
        self._held = {owners: {name: records for name, records in by_name.items()
                               if before.get(owners, {}).get(name) == id(records)}
                      for owners, by_name in sent.items()}
        self._sent_ids = {owners: dict(zip(by_name, map(id, by_name.values()))) for owners, by_name in sent.items()}
        return pickle.dumps((self._number, based_on, columns), protocol=pickle.HIGHEST_PROTOCOL)


class SnapshotReceiver:
    """The parent's side: decodes each snapshot, keeping what the next one may name."""

    def __init__(self) -> None:
        self.holds: int | None = None  # the number of the last snapshot decoded, to ask the next against
        self._held: Held = {}

    def forget(self) -> None:
        """A new child starts: it sends everything, numbered afresh."""
        self.holds, self._held = None, {}

    def decode(self, data: bytes) -> KafkaClusterSnapshot:
        """The snapshot `data` carries. Raises WireError (and holds nothing after it) when the
        bytes are not a snapshot, or name records of a snapshot this receiver does not hold."""
        try:
            number, based_on, (cls, values) = pickle.loads(data)
            if based_on is not None and based_on != self.holds:
                raise WireError(f"snapshot {number} was sent against snapshot {based_on}, "
                                f"this process holds {self.holds}")
            if cls is not KafkaClusterSnapshot:
                raise WireError(f"a {getattr(cls, '__name__', cls)!r} instead of a cluster snapshot")
            snapshot = snapshot_from_columns(cls, values, self._held if based_on is not None else None)
        except WireError:
            self.forget()
            raise
        except Exception as e:  # unpicklable, or the wrong shape: nothing of it is used
            self.forget()
            raise WireError(f"could not decode a snapshot: {type(e).__name__}: {e}") from e
        self.holds, self._held = number, records_by_name(snapshot)
        return snapshot
