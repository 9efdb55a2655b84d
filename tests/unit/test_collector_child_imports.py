"""The collector's child process unpickles its settings and imports the collector: neither may
import the parent's world.

A `CompiledFilter` defined in the configuration module made every child import pydantic, the
alerting and the derivation (numpy): ~45 MB per cluster of memory the child never used. numpy
alone is ~15 MB of it: a module the collector imports (`collectors.kafka.retention`, for its
log-start rule) must leave numpy to the parent's derivation.
"""
from __future__ import annotations

import pickle

from monitor.app.config import Config
from monitor.collection.kafka_source import collector_settings
from tests.helpers import fresh_interpreter_lines
PARENT_ONLY = ("numpy", "pydantic", "monitor", "alerts", "dash", "flask", "yaml")


def run_in_a_fresh_interpreter(probe: str, stdin: bytes = b"") -> list[str]:
    """The lines `probe` prints, then the parent-only packages it imported, as a last line."""
    probe += f"import sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({PARENT_ONLY!r})))\n"
    return fresh_interpreter_lines(probe, stdin)


def test_unpickling_the_collector_settings_imports_nothing_of_the_parent() -> None:
    config = Config.model_validate({"clusters": [{
        "name": "c", "bootstrap_servers": "broker:9092",
        "groups": {"allow": ["app-.*"], "deny": ["app-test"]}, "topics": {"deny": ["__.*"]},
    }]})
    payload = pickle.dumps(collector_settings(config.clusters[0]))
    out = run_in_a_fresh_interpreter(
        "import pickle, sys\n"
        "settings = pickle.loads(sys.stdin.buffer.read())\n"
        "print(settings.group_filter('app-1'), settings.group_filter('app-test'), settings.topic_filter('__x'))\n",
        payload)
    assert out == ["True False False", "[]"]


def test_the_collector_imports_nothing_of_the_parent() -> None:
    """What the child imports to collect (its entry point, and the collector `_child_main` imports)."""
    out = run_in_a_fresh_interpreter("import collectors.kafka.process\n"
                                     "from collectors.kafka.collector import KafkaCollector\n")
    assert out == ["[]"]
