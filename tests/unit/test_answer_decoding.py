"""ListOffsets answers read from their bytes (collectors.kafka.answer_decoding).

Rule 1 - an answer in the flexible encoding (v6+) gives each partition's offset, or its error,
         exactly as kafka-python's decoded response gives them (`offsets_of_response`).
Rule 2 - an answer of an earlier version, an entry with tagged fields, or bytes that do not end
         where the answer does are decoded by kafka-python: the same answer, never a wrong one.
Rule 3 - a ListOffsets request the collector sends has its answer decoded this way, through
         kafka-python's own parser.
"""
from __future__ import annotations

import random
import struct

import pytest
from kafka.protocol.api_header import ResponseHeader
from kafka.protocol.consumer.offsets import IsolationLevel, ListOffsetsResponse, OffsetSpec
from kafka.protocol.parser import KafkaProtocol

from collectors.kafka.answer_decoding import OffsetsAnswer, _read_flexible, list_offsets_answer, offsets_of_response
from collectors.kafka.group_requests import list_offsets_request
from tests.kafka_answers import offset_fetch_body

_Topic = ListOffsetsResponse.ListOffsetsTopicResponse
_Partition = _Topic.ListOffsetsPartitionResponse


def _response(version: int, topics: dict[str, list[tuple[int, int, int]]], throttle: int = 0):
    """kafka-python's response: topic -> (partition, error code, offset) rows."""
    kw = {"throttle_time_ms": throttle} if version >= 2 else {}
    return ListOffsetsResponse(version=version, **kw, topics=[
        _Topic(version=version, name=name, partitions=[
            _Partition(version=version, partition_index=p, error_code=error, timestamp=-1, offset=offset,
                       **({"leader_epoch": 3} if version >= 4 else {}))
            for p, error, offset in rows])
        for name, rows in topics.items()])


def _body(version: int, topics, throttle: int = 0) -> bytes:
    return bytes(_response(version, topics, throttle).encode(version=version))


def _expected(version: int, body: bytes) -> OffsetsAnswer:
    return offsets_of_response(ListOffsetsResponse.decode(body, version=version))


def _random_topics(rng: random.Random) -> dict[str, list[tuple[int, int, int]]]:
    topics = {}
    for t in range(rng.randint(0, 12)):
        name = rng.choice(["t", "orders", "ü-topic", "x" * rng.randint(1, 300)]) + f"-{t}"
        rows = []
        for p in rng.sample(range(200), rng.randint(0, 40)):
            error = rng.choice([0, 0, 0, 0, 6, 3])  # NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION
            rows.append((p, error, rng.choice([-1, 0, 12, 2**31 + 5, 2**62, rng.randint(0, 10**9)])))
        topics[name] = rows
    return topics


@pytest.mark.parametrize("version", range(6, 12))
def test_rule_1_flexible_answers_read_from_their_bytes_are_kafka_pythons(version):
    rng = random.Random(version)
    for _ in range(60):
        topics = _random_topics(rng)
        throttle = rng.choice([0, 0, 250])
        body = _body(version, topics, throttle)
        read = _read_flexible(body)
        assert read is not None, "a flexible answer without tagged fields is read from its bytes"
        assert read == _expected(version, body)
        assert read.throttle_time_ms == throttle
        assert list_offsets_answer(ListOffsetsResponse[version], version, body) == read


@pytest.mark.parametrize("version", range(1, 6))
def test_rule_2_earlier_versions_are_decoded_by_kafka_python(version):
    topics = {"orders": [(0, 0, 12), (1, 6, -1)], "t": [(3, 0, 2**40)]}
    body = _body(version, topics, 7)
    answer = list_offsets_answer(ListOffsetsResponse[version], version, body)
    assert answer == _expected(version, body)
    assert answer.offsets == {("orders", 0): 12, ("t", 3): 2**40} and answer.errors == [("orders", 1, 6)]


def _with_a_tagged_field(body: bytes) -> bytes:
    """The answer of one topic and one partition with a tagged field (tag 7, 2 bytes) on its entry."""
    entry_end = len(body) - 2  # the partition's tag count, then the topic's and the answer's
    assert body[entry_end - 1:] == b"\x00\x00\x00"
    return body[:entry_end - 1] + b"\x01\x07\x02\xab\xcd" + body[entry_end:]


def test_rule_2_an_entry_with_tagged_fields_is_decoded_by_kafka_python():
    body = _with_a_tagged_field(_body(9, {"orders": [(4, 0, 99)]}))
    assert _read_flexible(body) is None
    answer = list_offsets_answer(ListOffsetsResponse[9], 9, body)
    assert answer.offsets == {("orders", 4): 99} and answer == _expected(9, body)


@pytest.mark.parametrize("cut", [1, 5, 20])
def test_rule_2_bytes_that_do_not_end_with_the_answer_are_not_read(cut):
    body = _body(9, {"orders": [(0, 0, 5), (1, 0, 6)], "t": [(0, 0, 7)]})
    assert _read_flexible(body[:-cut]) is None
    assert _read_flexible(body + b"\x00" * cut) is None


def test_rule_3_the_collectors_request_has_its_answer_read_through_kafka_pythons_parser():
    partitions = (("orders", 0), ("orders", 1), ("t", 2))
    request = list_offsets_request(partitions, OffsetSpec.LATEST, IsolationLevel.READ_UNCOMMITTED)
    request.API_VERSION = 9
    parser = KafkaProtocol(client_id="test")
    correlation_id = parser.send_request(request)
    body = _body(9, {"orders": [(0, 0, 30), (1, 6, -1)], "t": [(2, 0, 2**33)]}, throttle=40)
    header = bytes(ResponseHeader(correlation_id=correlation_id).encode(flexible=True))
    [(answered_id, answer)] = parser.receive_bytes(struct.pack(">i", len(header) + len(body)) + header + body)
    assert answered_id == correlation_id
    assert answer == OffsetsAnswer({("orders", 0): 30, ("t", 2): 2**33}, [("orders", 1, 6)], 40)


# -- OffsetFetch ------------------------------------------------------------------------------
#
# Rule 4 - an OffsetFetch answer (v8) whose partitions were committed without metadata gives each
#          group its committed offsets, or its error, exactly as kafka-python's decoded response.
# Rule 5 - a partition committed with metadata, an entry with tagged fields, or bytes that do not
#          end with the answer: kafka-python decodes it (the same offsets).

def _kafka_pythons_offsets(body: bytes):
    from kafka.protocol.consumer import OffsetFetchResponse

    from collectors.kafka.group_requests import offsets_of_groups

    return offsets_of_groups(OffsetFetchResponse.decode(body, version=8))


def _comparable(offsets):
    """Errors compared by class and text (exceptions are not equal to equal exceptions)."""
    return {g: (type(v).__name__, str(v)) if isinstance(v, Exception) else v for g, v in offsets.items()}


def _random_groups(rng: random.Random):
    groups = {}
    for g in range(rng.randint(0, 30)):
        name = rng.choice(["g", "payments-reader", "ü", "x" * rng.randint(1, 200)]) + f"-{g}"
        if rng.random() < 0.1:
            groups[name] = rng.choice([16, 30])  # NOT_COORDINATOR, GROUP_AUTHORIZATION_FAILED
            continue
        rows = []
        for topic in rng.sample(["orders", "t", "events-ü"], rng.randint(0, 3)):
            for p in rng.sample(range(64), rng.randint(1, 12)):
                error = 3 if rng.random() < 0.02 else 0  # UNKNOWN_TOPIC_OR_PARTITION
                rows.append((topic, p, rng.choice([-1, 0, 6, 2**31 + 1, rng.randint(0, 10**12)]), error))
        groups[name] = rows
    return groups


def test_rule_4_offset_fetch_answers_read_from_their_bytes_are_kafka_pythons():
    from collectors.kafka.answer_decoding import read_offset_fetch
    from collectors.kafka.group_requests import offsets_of_groups

    rng = random.Random(4)
    for _ in range(150):
        null = rng.random() < 0.3  # metadata null (None) rather than ""
        body = offset_fetch_body(_random_groups(rng), metadata=lambda *_: None if null else "", throttle=rng.choice([0, 9]))
        fetched = read_offset_fetch(body)
        assert fetched is not None, "committed without metadata: read from its bytes"
        assert _comparable(offsets_of_groups(fetched)) == _comparable(_kafka_pythons_offsets(body))


def test_rule_5_a_partition_committed_with_metadata_is_decoded_by_kafka_python():
    from kafka.protocol.consumer import OffsetFetchResponse

    from collectors.kafka.answer_decoding import FetchedOffsets, read_offset_fetch
    from collectors.kafka.group_requests import offset_fetch_answer, offsets_of_groups

    groups = {"a": [("orders", 0, 5, 0), ("orders", 1, 7, 0)], "b": [("t", 2, 9, 0)]}
    body = offset_fetch_body(groups, metadata=lambda g, _t, p: "by the app" if (g, p) == ("a", 1) else "")
    assert read_offset_fetch(body) is None
    answer = offset_fetch_answer(OffsetFetchResponse[8], 8, body)
    assert not isinstance(answer, FetchedOffsets)
    offsets = offsets_of_groups(answer)
    assert [(o.topic, o.partition, o.offset) for o in offsets["a"]] == [("orders", 0, 5), ("orders", 1, 7)]
    assert _comparable(offsets) == _comparable(_kafka_pythons_offsets(body))


@pytest.mark.parametrize("cut", [1, 3, 25])
def test_rule_5_bytes_that_do_not_end_with_the_answer_are_not_read(cut):
    from collectors.kafka.answer_decoding import read_offset_fetch

    body = offset_fetch_body({"a": [("orders", 0, 5, 0), ("orders", 1, 7, 0)], "b": 16})
    assert read_offset_fetch(body) is not None
    assert read_offset_fetch(body[:-cut]) is None
    assert read_offset_fetch(body + b"\x00" * cut) is None


def _answered(parser: KafkaProtocol, request, body: bytes):
    """`request` sent through kafka-python's parser, and `body` received as its answer."""
    correlation_id = parser.send_request(request)
    header = bytes(ResponseHeader(correlation_id=correlation_id).encode(flexible=True))
    [(answered_id, answer)] = parser.receive_bytes(struct.pack(">i", len(header) + len(body)) + header + body)
    assert answered_id == correlation_id
    return answer


def test_rule_3_the_collectors_offset_fetch_has_its_answer_read_through_kafka_pythons_parser():
    from collectors.kafka.group_requests import GroupOffsetsAnswer, ReusedOffsetFetchRequest, offsets_of_groups

    request = ReusedOffsetFetchRequest(("a", "b"))
    request.API_VERSION = 8
    body = offset_fetch_body({"a": [("orders", 1, 7, 0), ("orders", 0, 5, 0)], "b": 16}, throttle=3)
    answer = _answered(KafkaProtocol(client_id="test"), request, body)
    assert isinstance(answer, GroupOffsetsAnswer) and answer.throttle_time_ms == 3
    offsets = offsets_of_groups(answer)
    assert [(o.topic, o.partition, o.offset) for o in offsets["a"]] == [("orders", 0, 5), ("orders", 1, 7)]
    assert type(offsets["b"]).__name__ == "NotCoordinatorError"


# Rule 6 - a group whose part of an answer is, byte for byte, its part of the previous answer to the
#          same request has the offsets read from that answer; any other group is read again.

def test_rule_6_a_groups_unchanged_part_keeps_its_offsets_and_a_changed_one_is_read_again():
    from collectors.kafka.group_requests import ReusedOffsetFetchRequest, offsets_of_groups

    request = ReusedOffsetFetchRequest(("a", "b", "c", "d"))
    request.API_VERSION = 8
    parser = KafkaProtocol(client_id="test")
    first = offsets_of_groups(_answered(parser, request, offset_fetch_body({
        "a": [("orders", 0, 5, 0), ("orders", 1, 7, 0)], "b": [("orders", 0, 9, 0)], "c": 16,
        "d": [("events", 3, 100, 0)]})))
    # a: the same; b: one offset moved (same length); c: still an error; d: another partition too
    second = offsets_of_groups(_answered(parser, request, offset_fetch_body({
        "a": [("orders", 0, 5, 0), ("orders", 1, 7, 0)], "b": [("orders", 0, 8, 0)], "c": 16,
        "d": [("events", 3, 100, 0), ("events", 4, 0, 0)]})))
    assert second["a"] is first["a"]  # not read again
    assert [(o.partition, o.offset) for o in second["b"]] == [(0, 8)]
    assert type(second["c"]).__name__ == "NotCoordinatorError" and second["c"] is not first["c"]
    assert [(o.partition, o.offset) for o in second["d"]] == [(3, 100), (4, 0)]


def test_rule_6_kept_answers_give_kafka_pythons_offsets_cycle_after_cycle():
    """Random cycles of one request: groups whose offsets move, stay, fail, come and go, commit
    with metadata (the whole answer then decoded by kafka-python). Every answer, read against
    the one kept from the cycle before, is what kafka-python decodes of it alone."""
    from collectors.kafka.group_requests import ReusedOffsetFetchRequest, offsets_of_groups

    rng = random.Random(6)
    names = [f"g{i}" for i in range(12)]
    request = ReusedOffsetFetchRequest(tuple(names))
    request.API_VERSION = 8
    parser = KafkaProtocol(client_id="test")
    groups = {name: [("orders", p, rng.randint(0, 50), 0) for p in range(rng.randint(1, 4))] for name in names}
    reused = 0
    for _ in range(200):
        for name in rng.sample(names, rng.randint(0, 4)):
            change = rng.random()
            if change < 0.5:  # an offset moves, maybe to another number of digits
                rows = list(groups[name]) if isinstance(groups[name], list) and groups[name] else [("orders", 0, 1, 0)]
                i = rng.randrange(len(rows))
                rows[i] = (rows[i][0], rows[i][1], rng.choice([rows[i][2] + 1, rng.randint(0, 2**40)]), 0)
                groups[name] = rows
            elif change < 0.7:
                groups[name] = rng.choice([16, 30])
            elif change < 0.85:
                groups[name] = [("orders", p, rng.randint(0, 50), 0) for p in range(rng.randint(1, 4))]
            else:
                groups[name] = [(t, p, -1 if rng.random() < 0.2 else rng.randint(0, 9), 0)
                                for t in ("orders", "t") for p in range(2)]
        asked = {name: rows for name, rows in groups.items() if rng.random() < 0.95}  # a group missing
        with_metadata = rng.random() < 0.05
        body = offset_fetch_body(asked, metadata=lambda *_: "m" if with_metadata else "")
        before = {name: offsets for name, offsets in getattr(request, "_kept_offsets").items()}
        offsets = offsets_of_groups(_answered(parser, request, body))
        assert _comparable(offsets) == _comparable(_kafka_pythons_offsets(body))
        reused += sum(1 for name, found in offsets.items() if before.get(name) is found)
    assert reused > 500  # the rule was exercised, not only the reading


class _Recorded:
    """A response class standing for kafka-python's: records the bodies it is asked to decode."""

    def __init__(self, response_class, version: int):
        self.response_class, self.version, self.decoded = response_class, version, []

    def decode(self, body):
        self.decoded.append(body)
        return self.response_class.decode(body, version=self.version)


def test_rule_2_and_5_versions_past_the_known_ones_are_decoded_by_kafka_python():
    from kafka.protocol.consumer import OffsetFetchResponse

    from collectors.kafka.group_requests import offset_fetch_answer

    body = _body(11, {"orders": [(0, 0, 5)]})
    later = _Recorded(ListOffsetsResponse, 11)
    assert list_offsets_answer(later, 12, body).offsets == {("orders", 0): 5} and later.decoded == [body]
    fetch = offset_fetch_body({"a": [("orders", 0, 5, 0)]})
    later = _Recorded(OffsetFetchResponse, 8)
    offset_fetch_answer(later, 10, fetch)  # v10 names topics by id
    assert later.decoded == [fetch]
    known = _Recorded(ListOffsetsResponse, 11)  # the last version known here: read from its bytes
    assert list_offsets_answer(known, 11, body).offsets == {("orders", 0): 5} and known.decoded == []


# -- DescribeLogDirs --------------------------------------------------------------------------
#
# Rule 6 - a DescribeLogDirs answer in the flexible encoding (v2-v5) gives each log directory, its
#          error, its topics' replicas (partition, size, future log) and its volume's sizes, and
#          the answer's own error (v3+), exactly as kafka-python's decoded response gives them
#          (`log_dirs_of_response`).
# Rule 7 - an answer of an earlier version, a replica with tagged fields, or bytes that do not end
#          where the answer does are decoded by kafka-python: the same answer, never a wrong one.
# Rule 8 - the collector's DescribeLogDirs request has its answer read this way, through
#          kafka-python's own parser.

def _log_dirs_response(version: int, dirs, throttle: int = 0, error: int = 0):
    """kafka-python's response: dirs as (error, path, {topic: [(partition, size, future)]}, total, usable);
    `error` the answer's own error code (v3+)."""
    from kafka.protocol.admin import DescribeLogDirsResponse as R

    result, topic = R.DescribeLogDirsResult, R.DescribeLogDirsResult.DescribeLogDirsTopic
    return R(version=version, throttle_time_ms=throttle, **({"error_code": error} if version >= 3 else {}), results=[
        result(version=version, error_code=error, log_dir=path, topics=[
            topic(version=version, name=name, partitions=[
                topic.DescribeLogDirsPartition(version=version, partition_index=p, partition_size=size,
                                               offset_lag=7, is_future_key=future)
                for p, size, future in replicas])
            for name, replicas in topics.items()],
            **({"total_bytes": total, "usable_bytes": usable} if version >= 4 else {}),
            **({"is_cordoned": True} if version >= 5 else {}))
        for error, path, topics, total, usable in dirs])


def _log_dirs_body(version: int, dirs, throttle: int = 0, error: int = 0) -> bytes:
    return bytes(_log_dirs_response(version, dirs, throttle, error).encode(version=version))


def _random_dirs(rng: random.Random):
    dirs = []
    for d in range(rng.randint(0, 4)):
        topics = {}
        for t in range(rng.randint(0, 15)):
            name = rng.choice(["orders", "ü-topic", "x" * rng.randint(1, 300)]) + f"-{t}"
            topics[name] = [(p, rng.choice([0, 1, 4096, 2**40, rng.randint(0, 10**12)]), rng.random() < 0.1)
                            for p in rng.sample(range(100), rng.randint(0, 30))]
        dirs.append((rng.choice([0, 0, 0, 57]), f"/data/{d}-ü", topics,
                     rng.choice([-1, 10**12]), rng.choice([-1, 4 * 10**11])))
    return dirs


@pytest.mark.parametrize("version", range(2, 6))
def test_rule_6_flexible_log_dirs_answers_read_from_their_bytes_are_kafka_pythons(version):
    from kafka.protocol.admin import DescribeLogDirsResponse

    from collectors.kafka.answer_decoding import _read_log_dirs, log_dirs_answer, log_dirs_of_response

    rng = random.Random(version)
    replicas, errors = 0, set()
    for _ in range(40):
        throttle = rng.choice([0, 0, 300])
        error = rng.choice([0, 0, 31]) if version >= 3 else 0  # 31: CLUSTER_AUTHORIZATION_FAILED
        body = _log_dirs_body(version, _random_dirs(rng), throttle, error)
        read = _read_log_dirs(body, version)
        assert read is not None, "a flexible answer without tagged fields is read from its bytes"
        assert read == log_dirs_of_response(DescribeLogDirsResponse.decode(body, version=version))
        assert read.throttle_time_ms == throttle
        assert read.error_code == error
        errors.add(error)
        assert log_dirs_answer(DescribeLogDirsResponse[version], version, body) == read
        replicas += sum(len(entries) for d in read.dirs for _name, entries in d.topics)
    assert replicas > 1000
    assert errors == ({0, 31} if version >= 3 else {0})


def test_rule_7_earlier_log_dirs_answers_and_tagged_replicas_are_decoded_by_kafka_python():
    from kafka.protocol.admin import DescribeLogDirsResponse

    from collectors.kafka.answer_decoding import LogDirAnswer, _read_log_dirs, log_dirs_answer

    dirs = [(0, "/data", {"orders": [(0, 4096, False), (1, 10, True)]}, -1, -1)]
    body = _log_dirs_body(1, dirs)
    expected = [LogDirAnswer(0, "/data", [("orders", [(0, 4096, False), (1, 10, True)])], -1, -1)]
    assert log_dirs_answer(DescribeLogDirsResponse[1], 1, body).dirs == expected
    # a tagged field (tag 3, 1 byte) on the last replica: its entry has another size
    flexible = _log_dirs_body(4, dirs)
    tail = 1 + 16 + 1 + 1  # after the replica: the topic's tags, the volume's sizes, the directory's and the answer's tags
    at = len(flexible) - tail - 1
    assert flexible[at:at + 1] == b"\x00"
    tagged = flexible[:at] + b"\x01\x03\x01\xff" + flexible[at + 1:]
    assert _read_log_dirs(tagged, 4) is None
    assert log_dirs_answer(DescribeLogDirsResponse[4], 4, tagged).dirs == [expected[0]._replace(total_bytes=-1)]
    for cut in (1, 9):
        assert _read_log_dirs(flexible[:-cut], 4) is None
        assert _read_log_dirs(flexible + b"\x00" * cut, 4) is None


def test_rule_8_the_collectors_log_dirs_request_has_its_answer_read_through_kafka_pythons_parser():
    from collectors.kafka.answer_decoding import LogDirAnswer, LogDirsAnswer
    from collectors.kafka.group_requests import LogDirsRequest

    request = LogDirsRequest(topics=None)
    request.API_VERSION = 4
    parser = KafkaProtocol(client_id="test")
    correlation_id = parser.send_request(request)
    body = _log_dirs_body(4, [(0, "/data", {"orders": [(2, 2**33, False)]}, 10**12, 10**11)], throttle=25)
    header = bytes(ResponseHeader(correlation_id=correlation_id).encode(flexible=True))
    [(answered_id, answer)] = parser.receive_bytes(struct.pack(">i", len(header) + len(body)) + header + body)
    assert answered_id == correlation_id
    assert answer == LogDirsAnswer([LogDirAnswer(0, "/data", [("orders", [(2, 2**33, False)])], 10**12, 10**11)], 25)
