"""The Kafka box against real brokers: Kafka 4.x (KRaft) and 3.9 (ZooKeeper).

Kafka's own ConsumerGroupCommand is the oracle: what we produce and commit must be what it
reports. Restarting the broker keeps topics, committed offsets and the port.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition

from demo.kafka_box import KafkaBox, KafkaBoxError, detached_status, pid_alive, stop_detached
from demo.kafka_cli import kafka as kafka_cli
from demo.kafka_tools import (KafkaToolError, create_topic, describe_group, list_topic_names,
                              parse_group_table)

POLL_DEADLINE_SECONDS = 60.0  # generous: CI boxes are small and shared


# ------------------------------------------------------------------------------- helpers
def produce(bootstrap: str, topic: str, counts_by_partition: dict[int, int]) -> None:
    """Produce ``count`` small messages to each partition and wait for the acks."""
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 0})
    for partition, count in counts_by_partition.items():
        for index in range(count):
            producer.produce(topic, value=f"m{index}".encode(), partition=partition)
    assert producer.flush(POLL_DEADLINE_SECONDS) == 0, "messages not acknowledged"


def consume_all(consumer: Consumer, expected: int) -> int:
    """Poll until ``expected`` messages arrived (bounded); return how many did."""
    received = 0
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while received < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            received += 1
    return received


def new_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})


def commit(consumer: Consumer, topic: str, offsets_by_partition: dict[int, int]) -> None:
    consumer.commit(offsets=[TopicPartition(topic, partition, offset)
                             for partition, offset in offsets_by_partition.items()],
                    asynchronous=False)


def oracle_by_partition(bootstrap: str, group: str, version_set: str) -> dict[int, dict]:
    return {row["partition"]: row for row in describe_group(bootstrap, group, version_set)}


def check_oracle_matches_what_we_did(box: KafkaBox, topic: str, group: str) -> None:
    """Produce 5/3/2 messages, commit 4/3/0, compare Kafka's own lag report (live and idle)."""
    produced = {0: 5, 1: 3, 2: 2}
    committed = {0: 4, 1: 3, 2: 0}
    create_topic(box.bootstrap, topic, partitions=3)
    produce(box.bootstrap, topic, produced)

    consumer = new_consumer(box.bootstrap, group)
    try:
        consumer.subscribe([topic])
        assert consume_all(consumer, sum(produced.values())) == sum(produced.values())
        commit(consumer, topic, committed)
        live_rows = oracle_by_partition(box.bootstrap, group, box.version_set)
    finally:
        consumer.close()
    idle_rows = oracle_by_partition(box.bootstrap, group, box.version_set)

    for rows, has_member in ((live_rows, True), (idle_rows, False)):
        assert sorted(rows) == [0, 1, 2], rows
        for partition, row in rows.items():
            expected = {"topic": topic, "group": group, "current_offset": committed[partition],
                        "log_end_offset": produced[partition],
                        "lag": produced[partition] - committed[partition]}
            assert {key: row[key] for key in expected} == expected, rows
            assert (row["consumer_id"] is not None) == has_member, rows


# ------------------------------------------------------------------------------- tests
def test_parse_group_table_reads_numbers_dashes_and_skips_notes() -> None:
    text = (
        "\nConsumer group 'g' has no active members.\n\n"
        "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID\n"
        "g      t      0          6               10              4    -            -     -\n"
        "g      t      1          -               7               -    c-1-abc      /127.0.0.1  my client\n"
    )
    rows = parse_group_table(text)
    assert rows == [
        {"group": "g", "topic": "t", "partition": 0, "current_offset": 6, "log_end_offset": 10,
         "lag": 4, "consumer_id": None, "host": None, "client_id": None},
        {"group": "g", "topic": "t", "partition": 1, "current_offset": None, "log_end_offset": 7,
         "lag": None, "consumer_id": "c-1-abc", "host": "/127.0.0.1", "client_id": "my client"},
    ]


def test_kraft_broker_offsets_match_kafka_oracle(kafka_broker: KafkaBox, unique_name) -> None:
    assert kafka_broker.bootstrap == f"127.0.0.1:{kafka_broker.port}"
    check_oracle_matches_what_we_did(kafka_broker, unique_name("topic"), unique_name("group"))


def test_zookeeper_broker_offsets_match_kafka_oracle(kafka39_broker: KafkaBox, unique_name) -> None:
    assert kafka39_broker.mode == "zookeeper" and kafka39_broker.zookeeper_port
    check_oracle_matches_what_we_did(kafka39_broker, unique_name("topic"), unique_name("group"))


def test_oracle_raises_for_unknown_group(kafka_broker: KafkaBox, unique_name) -> None:
    with pytest.raises(KafkaToolError, match="not found|does not exist"):
        describe_group(kafka_broker.bootstrap, unique_name("no-such-group"))


@pytest.mark.parametrize("mode, hard", [
    ("kraft", False),
    ("kraft", True),
    pytest.param("zookeeper", True, marks=pytest.mark.kafka39),
], ids=["kraft-sigterm", "kraft-sigkill", "zookeeper-sigkill"])
def test_broker_restart_keeps_port_topics_and_offsets(kafka_box_factory, unique_name,
                                                      mode: str, hard: bool) -> None:
    box = kafka_box_factory(mode=mode)
    topic, group = unique_name("topic"), unique_name("group")
    create_topic(box.bootstrap, topic, partitions=1)
    produce(box.bootstrap, topic, {0: 3})
    consumer = new_consumer(box.bootstrap, group)
    try:
        commit(consumer, topic, {0: 2})
    finally:
        consumer.close()
    bootstrap, data_dir = box.bootstrap, box.data_dir

    box.stop_broker(hard=hard)
    assert not box.is_broker_running()
    box.start_broker()

    assert (box.bootstrap, box.data_dir) == (bootstrap, data_dir)
    assert topic in list_topic_names(box.bootstrap)
    (row,) = describe_group(box.bootstrap, group, box.version_set)
    assert (row["current_offset"], row["log_end_offset"], row["lag"]) == (2, 3, 1)


def test_invalid_broker_config_is_reported(kafka_box_factory) -> None:
    with pytest.raises(KafkaBoxError, match="num.network.threads"):
        kafka_box_factory(broker_config={"num.network.threads": "not-a-number"})


def test_broker_crash_at_start_reports_log_tail_and_cleans_up(kafka_jars) -> None:
    box = KafkaBox(jvm_options=["-Xmx1m"])  # the JVM refuses to start with so little heap
    with pytest.raises(KafkaBoxError, match="exited during start-up") as raised:
        box.start()
    assert "heap" in str(raised.value).lower()  # the tail of broker.log is in the message
    assert box.broker_pid is None and not box.is_broker_running()


def test_cli_start_status_stop_detached(kafka_jars, tmp_path) -> None:
    state_file = tmp_path / "kafka.json"
    common = ["--state-file", str(state_file)]
    runner = CliRunner()
    try:
        started = runner.invoke(kafka_cli, ["start", "--port", "0", "--data-dir",
                                            str(tmp_path / "data"), *common])
        assert started.exit_code == 0, started.output
        state = json.loads(state_file.read_text())
        assert f"bootstrap.servers={state['bootstrap']}" in started.output

        status = runner.invoke(kafka_cli, ["status", *common])
        assert status.exit_code == 0 and "running" in status.output, status.output
        assert detached_status(state_file)["ready"]

        stopped = runner.invoke(kafka_cli, ["stop", *common])
        assert stopped.exit_code == 0, stopped.output
        assert not state_file.exists()
        assert not pid_alive(state["broker_pid"], cmdline_contains=state["data_dir"])

        after = runner.invoke(kafka_cli, ["status", *common])
        assert after.exit_code == 1 and "not running" in after.output
    finally:
        stop_detached(state_file)  # never leave a JVM behind if an assertion failed


@pytest.mark.parametrize("users", [{"two words": "pw"}, {"alice": 'say "hi"'}, {"alice": "back\\slash"},
                                   {"alice": "pässword"}, {"alice": ""}])
def test_sasl_users_a_jaas_config_cannot_hold_are_refused(users) -> None:
    with pytest.raises(ValueError, match="sasl_users: "):
        KafkaBox(sasl_users=users)
