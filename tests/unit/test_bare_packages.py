"""The client libraries entered bare (`collectors.kafka.bare_packages`): the collector's child
imports what it uses of kafka-python and confluent-kafka without their package `__init__`s, every
name it asks of a package is the very object a full import binds, and a name the bare package
cannot give runs the `__init__` in full rather than fail.

The cases that enter the packages bare run in a fresh interpreter, as the child starts: this
process has both imported whole already, and `enter_bare` leaves an imported package as it is.
"""
from __future__ import annotations

import importlib
import sys

import pytest

from collectors.kafka.bare_packages import REEXPORTED_FROM, enter_bare
from tests.helpers import fresh_interpreter_lines as in_a_fresh_interpreter
# What the collector's child has no use for: kafka-python's clients, and what confluent-kafka's
# __init__ imports for its serializing clients.
UNUSED = ("kafka.consumer", "kafka.producer", "kafka.coordinator", "asyncio",
          "confluent_kafka.deserializing_consumer", "confluent_kafka.serializing_producer")


def test_the_collectors_modules_import_without_the_clients_it_does_not_use() -> None:
    out = in_a_fresh_interpreter(
        "import sys\n"
        "from collectors.kafka.bare_packages import enter_client_libraries_bare\n"
        "enter_client_libraries_bare()\n"
        # everything the child imports to collect, probe and check its client
        "from collectors.kafka.collector import KafkaCollector\n"
        "import collectors.kafka.probe, collectors.kafka.client_check, collectors.kafka.positions\n"
        "from confluent_kafka import TopicPartition, KafkaException, ConsumerGroupTopicPartitions\n"
        "from kafka import KafkaAdminClient\n"
        "import kafka.admin, confluent_kafka.cimpl, confluent_kafka.error\n"
        "print(TopicPartition is confluent_kafka.cimpl.TopicPartition, KafkaAdminClient is kafka.admin.KafkaAdminClient,\n"
        "      KafkaException is confluent_kafka.error.KafkaException, TopicPartition('t', 3).partition)\n"
        f"print(sorted(m for m in {UNUSED!r} if m in sys.modules))\n")
    assert out == ["True True True 3", "[]"]


def test_without_entering_bare_the_same_imports_load_them() -> None:
    """The check above can fail: the package __init__s do import them."""
    out = in_a_fresh_interpreter(
        "import sys\n"
        "from collectors.kafka.collector import KafkaCollector\n"
        f"print(sorted(m for m in {UNUSED!r} if m in sys.modules))\n")
    assert out == [str(sorted(UNUSED))]


@pytest.mark.parametrize("package", sorted(REEXPORTED_FROM))
def test_every_name_taken_from_a_submodule_is_the_one_a_full_import_binds(package: str) -> None:
    """For every name of the fully imported package that one of its re-export sources defines,
    the first source defining it (the one `enter_bare` answers from) holds the very same object."""
    full = importlib.import_module(package)
    checked, different = 0, []
    for name in dir(full):
        if name.startswith("__"):
            continue
        for source in REEXPORTED_FROM[package]:
            value = getattr(importlib.import_module(source), name, different)
            if value is not different:
                checked += 1
                if value is not getattr(full, name):
                    different.append((name, source))
                break
    assert different == []
    assert checked >= (1 if package == "kafka" else 25)


def test_a_name_the_submodules_do_not_give_runs_the_package_init_in_full() -> None:
    out = in_a_fresh_interpreter(
        "import sys\n"
        "from collectors.kafka.bare_packages import enter_client_libraries_bare\n"
        "enter_client_libraries_bare()\n"
        "import kafka, confluent_kafka\n"
        "from kafka.admin import KafkaAdminClient\n"
        "print('kafka.consumer' in sys.modules, 'asyncio' in sys.modules)\n"
        "from kafka import KafkaConsumer\n"  # defined by kafka-python's __init__ only
        "from confluent_kafka import DeserializingConsumer\n"
        "import kafka.consumer, confluent_kafka.deserializing_consumer as dc\n"
        "print(KafkaConsumer is kafka.consumer.KafkaConsumer, DeserializingConsumer is dc.DeserializingConsumer,\n"
        "      isinstance(confluent_kafka.__version__, str), 'asyncio' in sys.modules)\n"
        "try:\n"
        "    from kafka import NoSuchName\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__)\n"
        "print(hasattr(confluent_kafka, 'no_such_name'))\n")
    assert out == ["False False", "True True True True", "ImportError", "False"]


def test_a_submodule_asked_of_the_bare_package_is_imported() -> None:
    out = in_a_fresh_interpreter(
        "import sys\n"
        "from collectors.kafka.bare_packages import enter_client_libraries_bare\n"
        "enter_client_libraries_bare()\n"
        "from kafka import errors\n"
        "import kafka.errors\n"
        "print(errors is kafka.errors, 'kafka.consumer' in sys.modules)\n")
    assert out == ["True False"]


def test_a_package_already_imported_is_left_as_it_is() -> None:
    import kafka

    assert enter_bare("kafka", REEXPORTED_FROM["kafka"]) is False
    assert sys.modules["kafka"] is kafka and "__getattr__" not in vars(kafka)
    assert enter_bare("no_such_package_here") is False
    assert enter_bare("json.decoder") is False  # a module, not a package
