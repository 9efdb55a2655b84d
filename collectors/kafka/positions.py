"""Reading group positions: readable lag and the exact age of the oldest readable record.

The I/O half of `collectors.kafka.readable` (which decides what to read and what answers mean):
one consumer per isolation level, never joining a group or committing, is assigned the chosen
positions and pauses each partition at its first answer, a record or the end of the partition.
What was read is remembered per position (see `ReadMemory`), so a position that stays is read
once.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from itertools import compress, repeat
from operator import itemgetter, ne

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from collectors.kafka.readable import (ReadCandidate, ReadMemory, ReadRequest, choose_reads,
                                      readable_position)
from collectors.models import CommittedOffset

log = logging.getLogger(__name__)

# Positions assigned to a reading consumer at a time.
READ_CHUNK = 500
# A reading consumer's metadata of all topics is asked again after this long (seconds).
METADATA_MAX_AGE = 300.0
# A reading consumer is closed at the end of a cycle once the topics it was assigned hold more
# partitions than this. librdkafka keeps ~3 KB of state for every partition of every topic a
# consumer was ever assigned, and its assignments get slower as that grows (measured at 10,000
# partitions, 2,000 positions read a cycle: +5 MB a cycle and the reads 0.37 -> 0.69 s in five
# cycles; closed each cycle, flat). A consumer reading the same few positions every cycle stays.
READER_PARTITIONS = 2000

Answer = tuple[int | None, float | None, int]  # (record offset, its timestamp, end reached)
_topic_of = itemgetter(0)


class _PreviousOffsets:
    """A group's committed offset on a partition in the last cycle (None: it had none), asked
    only for the positions that could be read. The last cycle's positions are kept as they came
    (a group's in the same order, cycle after cycle): indexing them per position each cycle cost
    the collector ~2 ms a cycle at 10,000 positions, for the few asked."""

    __slots__ = ("_last", "_indexed")

    def __init__(self, last: dict[str, tuple[CommittedOffset, ...]]):
        self._last = last
        self._indexed: dict[str, dict[tuple[str, int], CommittedOffset]] = {}

    def __call__(self, group: str, at: int, topic: str, partition: int) -> int | None:
        offsets = self._last.get(group, ())
        o = offsets[at] if at < len(offsets) else None
        if o is None or o.partition != partition or o.topic != topic:  # the group's partitions changed
            indexed = self._indexed.get(group)
            if indexed is None:
                indexed = self._indexed[group] = {(p.topic, p.partition): p for p in offsets}
            o = indexed.get((topic, partition))
        return o.offset if o is not None and o.committed else None


class _StillGroup:
    """A group that stayed still, as the last cycle annotated it. Annotating it again gives the
    same records while its positions are the same tuple (the OffsetFetch answer's bytes were
    the same: `collectors.kafka.answer_decoding`), its isolation level is the same, no high
    watermark, last stable or earliest offset of its topics moved, and every lagging position
    was answered from what is known (nothing to read): the same lookups of the same memory.
    Measured at 1,000 still groups x 10 partitions: annotating them took 17-34 ms of a collect's
    main thread, keeping them 1-2 ms."""

    __slots__ = ("commits", "isolation", "annotated", "topics")

    def __init__(self, commits: tuple[CommittedOffset, ...], isolation: str,
                 annotated: tuple[CommittedOffset, ...] | None):
        self.commits = commits
        self.isolation = isolation
        self.annotated = annotated  # None: no position lags (the commits as they came)
        self.topics = frozenset(map(_topic_of, commits))

    def same(self, commits: tuple[CommittedOffset, ...], isolation: str, moved: set[str]) -> bool:
        return (commits is self.commits and isolation == self.isolation
                and moved.isdisjoint(self.topics))


def moved_topics(last: tuple[dict, ...], now: tuple[dict, ...]) -> set[str]:
    """Topics with a partition whose value differs between the last cycle's maps and this
    cycle's, pair by pair (or is in only one of them).

    No Python step per partition: a map is made again each cycle in the same key order (the
    same requests, answered in order), so its values are compared in step with the last ones;
    otherwise each key is looked up. Measured at 100,000 partitions: 6-11 ms in step, 22 ms
    looked up (a set difference of their items took 239 ms when every partition moved)."""
    moved: set[str] = set()
    for before, after in zip(last, now):
        if before is after:
            continue
        if len(before) == len(after) and list(before) == list(after):  # the same keys, in order
            moved.update(map(_topic_of, compress(after, map(ne, before.values(), after.values()))))
            continue
        missing = object()
        moved.update(map(_topic_of, compress(after, map(ne, map(before.get, after, repeat(missing)),
                                                        after.values()))))
        moved.update(map(_topic_of, before.keys() - after.keys()))
    return moved


class PositionReader:
    """Annotates a cycle's group positions with what is left to read there.

    `consumer_config(isolation)` gives the librdkafka settings of a reading consumer (connection
    and security included); `policy(group)` the group's isolation level.
    """

    def __init__(self, cluster: str, consumer_config: Callable[[str], dict], *, remembered_budget: int,
                 moving_budget: int, budget_seconds: float, reader_partitions: int | None = None):
        self._cluster = cluster
        self._consumer_config = consumer_config
        self._remembered_budget = remembered_budget
        self._moving_budget = moving_budget
        self._budget_seconds = budget_seconds
        self._reader_partitions = READER_PARTITIONS if reader_partitions is None else reader_partitions
        self._readers: dict[str, Consumer] = {}
        self._assigned_topics: dict[str, set[str]] = {}  # per reader: every topic it was assigned
        self._memory = ReadMemory()
        self._last_commits: dict[str, tuple[CommittedOffset, ...]] = {}  # the last cycle's positions
        # the last cycle's (high watermarks, last stable offsets, earliest offsets), and what it
        # made of each group that stayed still (see `_StillGroup`)
        self._last_ends: tuple[dict, dict, dict] = ({}, {}, {})
        self._still: dict[str, _StillGroup] = {}
        self._first_ends: dict[tuple[str, int], int] = {}  # first high watermark seen per partition
        self.assignments = 0  # assign() calls: each starts fetches (the requests count)
        self.readers_opened = 0
        # per reader: the partition count of every topic it has metadata for, and when asked
        self._known_topics: dict[str, tuple[dict[str, int], float]] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        for isolation in list(self._readers):
            self._close_reader(isolation)

    def _close_reader(self, isolation: str) -> None:
        consumer = self._readers.pop(isolation, None)
        self._known_topics.pop(isolation, None)
        self._assigned_topics.pop(isolation, None)
        if consumer is None:
            return
        try:
            consumer.close()
        except Exception:  # closing a consumer of a dead cluster may fail; it is discarded anyway
            log.debug("closing a reading consumer failed", exc_info=True)

    def _partitions_held(self, isolation: str) -> int:
        """Partitions of the topics the reader was assigned: what librdkafka keeps state for."""
        counts = self._known_topics.get(isolation, ({}, 0.0))[0]
        return sum(counts.get(topic, 1) for topic in self._assigned_topics.get(isolation, ()))

    def forget_topic(self, topic: str) -> None:
        """The topic was re-created: nothing read or seen of its old life holds."""
        self._memory.forget_topic(topic)
        self._still = {}
        self._first_ends = {k: v for k, v in self._first_ends.items() if k[0] != topic}
        self._last_commits = {name: tuple(o for o in offsets if o.topic != topic)
                              for name, offsets in self._last_commits.items()}

    def note_end_offsets(self, latest: dict[tuple[str, int], int]) -> None:
        """This cycle's high watermarks: the first one seen of a partition dates its history."""
        for key, offset in latest.items():
            self._first_ends.setdefault(key, offset)
        if len(self._first_ends) > len(latest):
            self._first_ends = {k: v for k, v in self._first_ends.items() if k in latest}

    # -- one cycle ----------------------------------------------------------------------------

    def annotate(self, commits: dict[str, tuple[CommittedOffset, ...]], isolation_of: Callable[[str], str],
                 latest: dict, stable: dict, earliest: dict) -> tuple[dict[str, tuple[CommittedOffset, ...]], int]:
        """Each lagging position annotated with its readable lag and, where read, the timestamp of
        the oldest readable record. Returns the annotated offsets and how many positions were read."""
        memory = self._memory
        lookup, latest_of, stable_of, earliest_of = memory.lookup, latest.get, stable.get, earliest.get
        candidates: list[ReadCandidate] = []
        out: dict[str, list[CommittedOffset]] = {}  # copies of the groups that lag
        # (group, index, isolation, log end) of the positions whose outcome is known only after
        # this cycle's reads; the others are annotated as they are met
        deferred: list[tuple[str, int, str, int]] = []
        previous_offset = _PreviousOffsets(self._last_commits)
        first_ends = self._first_ends
        last_commits, still, kept = self._last_commits, self._still, {}
        reused: list[_StillGroup] = []  # the still groups kept as the last cycle annotated them
        moved = moved_topics(self._last_ends, (latest, stable, earliest))
        # every field, by tuple.__new__ (the position's three last): replace() or the named
        # tuple's own __new__ cost several times more, 100,000 times a cycle
        record = tuple.__new__
        for name, offsets in commits.items():
            isolation = isolation_of(name)
            group = still.get(name)
            if group is not None and group.same(offsets, isolation, moved):
                kept[name] = group
                reused.append(group)
                continue
            committed_isolation = isolation == "read_committed"
            annotated = None
            waits = len(deferred)
            for i, o in enumerate(offsets):
                topic, partition, offset = o.topic, o.partition, o.offset
                key = (topic, partition)
                end = latest_of(key)
                if end is None or end <= offset:
                    continue
                if annotated is None:
                    annotated = out[name] = list(offsets)
                log_end = stable_of(key, end) if committed_isolation else end
                if log_end <= offset:
                    deferred.append((name, i, isolation, log_end))
                    continue  # only open transactions after the position: nothing readable yet
                known, read_from = lookup(isolation, topic, partition, offset, log_end, earliest_of(key))
                if read_from is None:
                    annotated[i] = record(CommittedOffset, (topic, partition, offset, o.committed)
                                          + readable_position(offset, log_end, known))
                    continue
                deferred.append((name, i, isolation, log_end))
                previous = previous_offset(name, i, topic, partition)
                candidates.append(ReadCandidate(
                    ReadRequest(isolation, topic, partition, offset, read_from), lag=end - offset,
                    remembered=previous is None or previous == offset,
                    predates_history=offset < first_ends.get(key, 0),
                ))
            # A group answered in full from what is known, which stayed still since the last
            # cycle, is kept: it is likely to stay (a stopped or idle consumer).
            if len(deferred) == waits and last_commits.get(name) is offsets:
                kept[name] = _StillGroup(offsets, isolation, None if annotated is None else tuple(annotated))
        # Every group of the last cycle, and no other, stayed still: each looks up what it looked
        # up then, which is all the memory holds. Otherwise the outcomes that still groups rest
        # on are marked, and the rest forgotten.
        every_group_still = len(reused) == len(commits) == len(last_commits)  # kept ones are last cycle's
        if not every_group_still:
            for group in reused:
                memory.mark_used(group.isolation, group.annotated)
        self._last_commits = dict(commits)
        self._last_ends = (latest, stable, earliest)
        self._still = kept
        requests = choose_reads(candidates, remembered_budget=self._remembered_budget,
                                moving_budget=self._moving_budget)
        read = 0
        if not requests:
            # Nothing to read: the reading consumers are closed until positions to read come
            # back. librdkafka keeps state for every partition a consumer was ever assigned
            # (measured: 38 of the collector process's 106 MB at 10,000 partitions); a cycle that
            # reads again opens a new one (measured: no slower than reusing it, on this broker).
            self.close()
        else:
            try:
                for request, (record_offset, timestamp, end) in self._read(requests).items():
                    memory.remember(request, record_offset, timestamp, end)
                    read += 1
            except KafkaException as exc:
                log.info("cluster %s: exact time lag skipped this cycle: %s", self._cluster, exc)
                self.close()
        for name, i, isolation, log_end in deferred:
            o = commits[name][i]
            known, _ = lookup(isolation, o.topic, o.partition, o.offset, log_end, earliest_of((o.topic, o.partition)))
            out[name][i] = record(CommittedOffset, (o.topic, o.partition, o.offset, o.committed)
                                  + readable_position(o.offset, log_end, known))
        if not every_group_still:
            memory.end_cycle()
        return {name: (group.annotated if (group := kept.get(name)) is not None and group.annotated is not None
                       else tuple(out[name]) if name in out else offsets)
                for name, offsets in commits.items()}, read

    # -- reading --------------------------------------------------------------------------------

    def _know_topics(self, isolation: str, consumer: Consumer, topics: set[str], deadline: float) -> None:
        """Make sure the consumer knows the leaders of `topics` before it is assigned them.

        Measured at 10,000 partitions: assigning partitions of topics a consumer has no metadata
        for costs about 1 s per chunk of 500 (librdkafka looks their leaders up behind a backoff);
        after one full metadata request, 0.1 s. Asked again for new topics, and every
        METADATA_MAX_AGE seconds (librdkafka ages out topics it does not use)."""
        known, at = self._known_topics.get(isolation, ({}, 0.0))
        if topics <= known.keys() and time.monotonic() - at < METADATA_MAX_AGE:
            return
        metadata = consumer.list_topics(timeout=max(0.1, deadline - time.monotonic()))  # inside the budget
        # The names are kept as copies made once the metadata is freed: its objects (~3.6 MB at
        # 10,000 partitions) are then freed whole, where names kept from among them held three of
        # the process's pymalloc arenas (docs/performance.md, the thirty-fourth pass). A topic
        # name has no NUL; no topics: one empty name, zipped with no sizes, gives {}.
        names = "\0".join(metadata.topics)
        sizes = [len(t.partitions) for t in metadata.topics.values()]
        del metadata
        self._known_topics[isolation] = (dict(zip(names.split("\0"), sizes)), time.monotonic())

    def _reader(self, isolation: str) -> Consumer:
        consumer = self._readers.get(isolation)
        if consumer is None:
            consumer = self._readers[isolation] = Consumer(self._consumer_config(isolation))
            self.readers_opened += 1
        return consumer

    def _read(self, requests: list[ReadRequest]) -> dict[ReadRequest, Answer]:
        """The first readable record from each position: (its offset, its timestamp, end) or, at
        the end of the partition first, (None, None, the end offset).

        Each reading consumer is assigned up to READ_CHUNK positions at a time and pauses each
        partition at its first answer: pausing also drops the rest of the partition's fetched
        batch inside librdkafka, so one message per partition reaches Python. The phase stops at
        its budget: what is not answered by then is read in a later cycle (positions that stay
        are remembered once read), so a slow broker costs readings, never the cycle. A reader whose
        topics hold more than `READER_PARTITIONS` partitions is closed at the end (a new one opens
        when next needed): librdkafka's state for them is bounded.
        """
        found: dict[ReadRequest, Answer] = {}
        deadline = time.monotonic() + self._budget_seconds
        by_isolation: dict[str, list[ReadRequest]] = {}
        for r in requests:
            by_isolation.setdefault(r.isolation, []).append(r)
        try:
            for isolation, batch in by_isolation.items():
                consumer = self._reader(isolation)
                topics = {r.topic for r in batch}
                self._know_topics(isolation, consumer, topics, deadline)
                self._assigned_topics.setdefault(isolation, set()).update(topics)
                for i in range(0, len(batch), READ_CHUNK):
                    if time.monotonic() >= deadline:
                        return found
                    found.update(self._read_chunk(consumer, batch[i:i + READ_CHUNK], deadline))
            return found
        finally:
            for isolation in list(self._readers):
                if self._partitions_held(isolation) > self._reader_partitions:
                    self._close_reader(isolation)

    def _read_chunk(self, consumer: Consumer, chunk: list[ReadRequest], deadline: float) -> dict[ReadRequest, Answer]:
        found: dict[ReadRequest, Answer] = {}
        by_partition = {(r.topic, r.partition): r for r in chunk}
        consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in chunk])
        self.assignments += 1
        try:
            while len(found) < len(by_partition) and time.monotonic() < deadline:
                message = consumer.poll(0.05)
                if message is None:
                    continue
                key = (message.topic(), message.partition())
                request = by_partition.get(key)
                if request is None or request in found:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.debug("cluster %s: reading %s[%d]: %s", self._cluster, key[0], key[1], error)
                        continue
                    found[request] = (None, None, message.offset())
                else:
                    _kind, ts_ms = message.timestamp()
                    ts = ts_ms / 1000.0 if ts_ms is not None and ts_ms >= 0 else None
                    found[request] = (message.offset(), ts, message.offset())
                consumer.pause([TopicPartition(*key)])
        finally:
            # Pause flags outlive unassign() in librdkafka: resume first, or the next cycle's
            # assignment of the same partitions would never fetch.
            consumer.resume([TopicPartition(r.topic, r.partition) for r in chunk])
            consumer.unassign()
        return found
