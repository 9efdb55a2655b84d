"""collectors.kafka.readable: what is left to read, which positions to read, what reads are
remembered. Pure; the table of cases is the specification."""
from __future__ import annotations

import pytest

from collectors.kafka.readable import (
    Position,
    ReadCandidate,
    ReadMemory,
    ReadOutcome,
    ReadRequest,
    choose_reads,
    readable_position,
)
from collectors.models import CommittedOffset


# ------------------------------------------------------------------------------ readable_position


@pytest.mark.parametrize("committed, log_end, outcome, expected", [
    # nothing read yet: every offset up to the end counts (markers included)
    (100, 106, None, Position(6, 100, None)),
    # the record at the committed offset was read: exact
    (100, 106, ReadOutcome(100, 1_000.0, 100), Position(6, 100, 1_000.0)),
    # aborted records and a marker came first: the first readable record is 103
    (100, 106, ReadOutcome(103, 1_003.0, 103), Position(3, 103, 1_003.0)),
    # only a commit marker after the position: the read reached the end, nothing is readable
    (105, 106, ReadOutcome(None, None, 106), Position(0, 106, None)),
    # nothing readable up to 106, but the log has grown since: the rest is unknown, counted
    (105, 110, ReadOutcome(None, None, 106), Position(4, 106, None)),
    # read_committed: the log ends at the last stable offset (open transaction from 103)
    (103, 103, None, Position(0, 103, None)),
    # the position is past the end (a consumer that committed beyond the LSO)
    (108, 106, None, Position(0, 108, None)),
])
def test_readable_position(committed, log_end, outcome, expected):
    position = readable_position(committed, log_end, outcome)
    assert position == expected
    assert type(position) is Position and position.readable_lag == expected.readable_lag


def test_a_position_is_the_tail_of_an_annotated_committed_offset():
    """The collector appends a position to a committed offset's first fields as they are
    (collectors.kafka.positions): the field names must line up."""
    assert CommittedOffset._fields[-len(Position._fields):] == Position._fields
    assert CommittedOffset._fields[:-len(Position._fields)] == ("topic", "partition", "offset", "committed")


# ------------------------------------------------------------------------------ ReadMemory


def _request(committed=5, start=None, isolation="read_committed"):
    return ReadRequest(isolation, "t", 0, committed, committed if start is None else start)


def test_unknown_position_is_read_from_the_committed_offset_clamped_to_the_log_start():
    memory = ReadMemory()
    assert memory.lookup("read_committed", "t", 0, 5, log_end=9, earliest=None) == (None, 5)
    assert memory.lookup("read_committed", "t", 0, 5, log_end=9, earliest=7) == (None, 7)


def test_a_found_record_is_remembered_while_the_position_stays():
    memory = ReadMemory()
    memory.remember(_request(), 7, 1_000.0, 7)
    for _ in range(3):
        assert memory.lookup("read_committed", "t", 0, 5, log_end=50, earliest=0) == (ReadOutcome(7, 1_000.0, 7), None)
        memory.end_cycle()
    # per isolation level: a read_uncommitted reader would have seen other records
    assert memory.lookup("read_uncommitted", "t", 0, 5, log_end=50, earliest=0) == (None, 5)


def test_nothing_readable_answers_until_the_log_grows_then_reading_goes_on_from_there():
    memory = ReadMemory()
    memory.remember(_request(), None, None, 6)
    assert memory.lookup("read_committed", "t", 0, 5, log_end=6, earliest=0) == (ReadOutcome(None, None, 6), None)
    outcome, read_from = memory.lookup("read_committed", "t", 0, 5, log_end=9, earliest=0)
    assert (outcome, read_from) == (ReadOutcome(None, None, 6), 6)
    memory.remember(_request(start=6), 8, 2_000.0, 8)  # remembered for the committed offset 5
    assert memory.lookup("read_committed", "t", 0, 5, log_end=9, earliest=0) == (ReadOutcome(8, 2_000.0, 8), None)


def test_positions_nobody_looked_up_are_forgotten_at_the_end_of_a_cycle():
    memory = ReadMemory()
    memory.remember(_request(committed=5), 5, 1.0, 5)
    memory.remember(_request(committed=6), 6, 2.0, 6)
    memory.end_cycle()
    memory.lookup("read_committed", "t", 0, 6, log_end=9, earliest=0)
    memory.end_cycle()
    assert len(memory) == 1
    assert memory.lookup("read_committed", "t", 0, 5, log_end=9, earliest=0) == (None, 5)


def test_a_record_deleted_by_retention_is_read_again():
    memory = ReadMemory()
    memory.remember(_request(committed=5), 5, 1.0, 5)
    assert memory.lookup("read_committed", "t", 0, 5, log_end=20, earliest=10) == (None, 10)


def test_a_recreated_topic_forgets_what_was_read():
    memory = ReadMemory()
    memory.remember(_request(), 5, 1.0, 5)
    memory.forget_topic("t")
    assert len(memory) == 0


# ------------------------------------------------------------------------------ choose_reads


def _candidate(partition, lag, *, remembered=True, predates=False, isolation="read_committed", committed=0):
    return ReadCandidate(ReadRequest(isolation, "t", partition, committed, committed), lag, remembered, predates)


def test_positions_the_history_cannot_date_come_first_then_by_lag():
    cands = [_candidate(0, 100), _candidate(1, 5, predates=True), _candidate(2, 50), _candidate(3, 7, predates=True)]
    chosen = choose_reads(cands, remembered_budget=3, moving_budget=0)
    assert [r.partition for r in chosen] == [3, 1, 0]


def test_moving_positions_get_their_own_budget_worst_first():
    cands = [_candidate(0, 10, remembered=False), _candidate(1, 30, remembered=False), _candidate(2, 20, remembered=False),
             _candidate(3, 1)]
    chosen = choose_reads(cands, remembered_budget=10, moving_budget=2)
    assert [r.partition for r in chosen] == [3, 1, 2]


def test_a_moving_position_older_than_the_history_counts_as_first():
    chosen = choose_reads([_candidate(0, 10, remembered=False, predates=True)], remembered_budget=1, moving_budget=0)
    assert [r.partition for r in chosen] == [0]


def test_one_read_per_partition_and_isolation_level():
    cands = [_candidate(0, 10, committed=1), _candidate(0, 5, committed=6),
             _candidate(0, 10, committed=1, isolation="read_uncommitted")]
    chosen = choose_reads(cands, remembered_budget=10, moving_budget=10)
    assert [(r.isolation, r.committed) for r in chosen] == [("read_committed", 1), ("read_uncommitted", 1)]


# ------------------------------------------------------------------------------ topic ids


def test_topic_ids_read_the_same_from_either_client():
    import uuid

    from collectors.kafka.cluster import topic_id_text

    u = uuid.UUID("dc8e342c-d55c-4a02-af72-8fde469c4c0f")
    text = topic_id_text(u)
    assert text == "3I40LNVcSgKvco/eRpxMDw"  # librdkafka's own text for this id
    assert topic_id_text(str(u)) == text == topic_id_text(text)
    assert topic_id_text(uuid.UUID(int=0)) is None and topic_id_text(None) is None
