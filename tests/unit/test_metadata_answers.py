"""A metadata answer byte for byte the previous one is not decoded again (MetadataAnswers).

Rule 1 - an answer is decoded as kafka-python decodes it until a ClusterInfo is kept for it.
Rule 2 - an answer whose body equals the kept one's, in the same API version, is `Unchanged` and
         carries the kept ClusterInfo and throttle time.
Rule 3 - any other body (a new leader, ISR, topic, topic id, error; another API version) is
         decoded anew.
Rule 4 - a body equal to the kept one but for its controller id (KRaft brokers name a random
         broker as the controller in each answer) is `Unchanged`: the kept ClusterInfo, with that
         answer's controller id. Before the flexible encoding (v9) bodies are compared in full.

The answers go through kafka-python's own parser (`KafkaProtocol`), as they do in the collector.
"""
from __future__ import annotations

import struct
import uuid
from dataclasses import replace

import pytest
from kafka.protocol.api_header import ResponseHeader
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.parser import KafkaProtocol

from collectors.kafka.group_requests import _cluster_info
from collectors.kafka.metadata_answers import Decoded, MetadataAnswers, Unchanged, controller_offset

_TOPIC_ID = uuid.UUID("2f4b8c1e-7d3a-4e59-9b10-6c2d8e4f0a17")


def _body(version: int = 12, *, leader: int = 1, isr=(1, 2), topics=("orders",), throttle: int = 0,
          controller: int = 1, cluster_id: str | None = "c", hosts=("h", "h"), racks=(None, None)) -> bytes:
    topic = MetadataResponse.MetadataResponseTopic
    partition = topic.MetadataResponsePartition
    response = MetadataResponse(
        version=version, throttle_time_ms=throttle, cluster_id=cluster_id, controller_id=controller,
        brokers=[MetadataResponse.MetadataResponseBroker(node_id=n, host=host, port=9090 + n, rack=rack)
                 for n, host, rack in zip((1, 2, 3), hosts, racks)],
        topics=[topic(error_code=0, name=name, topic_id=_TOPIC_ID, is_internal=False,
                      partitions=[partition(error_code=0, partition_index=i, leader_id=leader, leader_epoch=0,
                                            replica_nodes=[1, 2], isr_nodes=list(isr), offline_replicas=[])
                                  for i in range(3)])
                for name in topics])
    return bytes(response.encode(version=version))


def _answer(answers: MetadataAnswers, body: bytes, version: int = 12):
    """`body` answered to a request of `answers`, through kafka-python's parser."""
    parser = KafkaProtocol(client_id="test")
    request = answers.request()
    request.API_VERSION = version
    correlation_id = parser.send_request(request)
    header = bytes(ResponseHeader(correlation_id=correlation_id).encode(
        flexible=MetadataResponse.flexible_version_q(version)))
    [(answered_id, answer)] = parser.receive_bytes(struct.pack(">i", len(header) + len(body)) + header + body)
    assert answered_id == correlation_id
    return answer


def _kept(answers: MetadataAnswers, body: bytes, version: int = 12):
    answer = _answer(answers, body, version)
    assert isinstance(answer, Decoded)
    info = _cluster_info(answer.response)
    answers.keep(answer, info)
    return info


def test_the_request_encodes_as_kafka_pythons_own():
    mine, plain = MetadataAnswers().request(), MetadataRequest(
        topics=None, allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False)
    for request in (mine, plain):
        request.API_VERSION = 12
        request.with_header(correlation_id=7, client_id="c")
    assert mine.encode(header=True, framed=True) == plain.encode(header=True, framed=True)


def test_rule_1_answers_are_decoded_until_one_is_kept():
    answers = MetadataAnswers()
    first, second = _answer(answers, _body()), _answer(answers, _body())
    assert isinstance(first, Decoded) and isinstance(second, Decoded)
    assert first.response == MetadataResponse[12].decode(_body())
    assert answers.decoded == 2 and answers.unchanged == 0


def test_rule_2_the_same_body_gives_the_kept_cluster_info_back():
    answers = MetadataAnswers()
    info = _kept(answers, _body(throttle=5))
    again = _answer(answers, _body(throttle=5))
    assert isinstance(again, Unchanged) and again.info is info
    assert again.throttle_time_ms == 5  # kafka-python's connection reads it (broker throttling)
    assert answers.decoded == 1 and answers.unchanged == 1
    # what the collector gets is what a decode would have given
    assert info == _cluster_info(MetadataResponse[12].decode(_body(throttle=5)))
    assert info.topics["orders"].partitions[2].leader == 1 and info.topics["orders"].topic_id


@pytest.mark.parametrize("changed", [
    pytest.param(dict(leader=2), id="leader"),
    pytest.param(dict(isr=(1,)), id="isr"),
    pytest.param(dict(topics=("orders", "payments")), id="new topic"),
    pytest.param(dict(topics=("payments",)), id="topic gone"),
    pytest.param(dict(throttle=100), id="throttled"),
])
def test_rule_3_another_body_is_decoded_anew(changed):
    answers = MetadataAnswers()
    info = _kept(answers, _body())
    answer = _answer(answers, _body(**changed))
    assert isinstance(answer, Decoded)
    assert _cluster_info(answer.response) == _cluster_info(MetadataResponse[12].decode(_body(**changed)))
    assert _cluster_info(answer.response) != info or changed == dict(throttle=100)


def test_rule_3_the_same_bytes_in_another_version_are_decoded_anew():
    answers = MetadataAnswers()
    _kept(answers, _body(11), version=11)
    assert isinstance(_answer(answers, _body(11), version=12), Decoded)
    assert isinstance(_answer(answers, _body(11), version=11), Unchanged)


@pytest.mark.parametrize("version", [9, 12, 13])
@pytest.mark.parametrize("shape", [
    pytest.param({}, id="two brokers"),
    pytest.param(dict(hosts=()), id="no broker"),
    pytest.param(dict(hosts=("broker-1.example", "b2", "h" * 300), racks=("eu-1a", None, "r" * 200)),
                 id="racks, long names"),
    pytest.param(dict(cluster_id=None), id="no cluster id"),
    pytest.param(dict(cluster_id="k" * 130), id="long cluster id"),
])
def test_the_controller_id_is_found_in_the_body(version, shape):
    for controller in (3, 70000, -1):
        body = _body(version, controller=controller, **shape)
        at = controller_offset(version, body)
        assert struct.unpack_from(">i", body, at) == (controller,)
        # and only there: the bodies of two controllers differ in those 4 bytes alone
        other = _body(version, controller=5, **shape)
        assert body[:at] == other[:at] and body[at + 4:] == other[at + 4:]


def test_the_controller_id_is_not_looked_for_before_the_flexible_encoding_nor_past_the_body():
    assert controller_offset(8, _body(8)) is None
    assert controller_offset(12, _body(12)[:10]) is None
    assert controller_offset(12, b"") is None


@pytest.mark.parametrize("controller, shown", [(2, 2), (-1, None)])
def test_rule_4_a_body_changed_only_in_its_controller_id_is_unchanged_with_that_id(controller, shown):
    answers = MetadataAnswers()
    info = _kept(answers, _body(controller=1, throttle=5))
    again = _answer(answers, _body(controller=controller, throttle=5))
    assert isinstance(again, Unchanged) and again.throttle_time_ms == 5
    assert again.info.controller_id == shown
    assert again.info.topics is info.topics and again.info.brokers is info.brokers
    assert again.info == _cluster_info(MetadataResponse[12].decode(_body(controller=controller, throttle=5)))
    # the kept answer stays the one decoded: its own controller id comes back with its bytes
    assert _answer(answers, _body(controller=1, throttle=5)).info is info
    assert answers.decoded == 1 and answers.unchanged == 2


@pytest.mark.parametrize("changed", [
    pytest.param(dict(leader=2), id="leader"),
    pytest.param(dict(hosts=("h", "g")), id="a broker's host, same length"),
    pytest.param(dict(racks=("a", None)), id="a rack"),
    pytest.param(dict(cluster_id="d"), id="cluster id"),
])
def test_rule_4_a_body_changed_elsewhere_too_is_decoded_anew(changed):
    answers = MetadataAnswers()
    _kept(answers, _body(controller=1))
    answer = _answer(answers, _body(controller=2, **changed))
    assert isinstance(answer, Decoded)
    assert _cluster_info(answer.response) == _cluster_info(MetadataResponse[12].decode(_body(controller=2, **changed)))


def test_rule_4_before_the_flexible_encoding_another_controller_is_decoded_anew():
    answers = MetadataAnswers()
    _kept(answers, _body(8, controller=1), version=8)
    assert isinstance(_answer(answers, _body(8, controller=2), version=8), Decoded)
    assert isinstance(_answer(answers, _body(8, controller=1), version=8), Unchanged)


def test_the_same_metadata_and_topics_give_the_same_partitions_by_leader_without_sorting_again():
    from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings

    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    info = _cluster_info(MetadataResponse[12].decode(_body(topics=("orders", "payments"))))
    committed = {"g": ()}
    collected = collector._collected_topics(info, committed)
    names, partitions = collected.topic_names, collected.partitions
    assert names == {"orders", "payments"} and len(partitions) == 6
    # what follows from them, worked out with them: grouped by leader, in that order
    assert collected.by_leader == info.leaders(partitions)
    again = collector._collected_topics(info, committed)
    assert again is collected
    # an answer unchanged but for its controller id (rule 4) shares the topics: nothing sorted again
    assert collector._collected_topics(replace(info, controller_id=7), committed) is collected
    # another answer (a new leader): ordered and grouped anew, by leader
    moved = _cluster_info(MetadataResponse[12].decode(_body(leader=2, topics=("orders", "payments"))))
    regrouped = collector._collected_topics(moved, committed)
    assert regrouped.partitions is not partitions and regrouped.by_leader == moved.leaders(partitions)
    assert regrouped.by_leader != collected.by_leader
    # fewer topics collected (a topic filter, a fleet's share): their partitions only
    collector.settings = KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                topic_filter=lambda name: name == "orders")
    only = collector._collected_topics(moved, committed)
    assert only.topic_names == {"orders"} and only.partitions == [("orders", p) for p in range(3)]
    assert only.by_leader == moved.leaders(only.partitions)
