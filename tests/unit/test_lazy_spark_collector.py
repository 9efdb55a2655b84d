"""The Spark collector (its HTTP client, discovery, parsers and progress feed, with `html.parser`)
is loaded by `run` only when the configuration gives Spark something to collect: targets or a
progress topic. A monitor of Kafka alone validates its configuration and starts without it
(~0.5 MB of the parent, docs/performance.md)."""
from __future__ import annotations

import json

from tests.helpers import fresh_interpreter_lines

SPARK_COLLECTION = ("collectors.spark.collector", "collectors.spark.client", "collectors.spark.discovery",
                    "collectors.spark.progress", "monitor.collection.spark_source", "html.parser")

_VALIDATE_AND_BUILD = f"""
import json, sys
from monitor.app.config import Config
from monitor.app.preflight import validate_for_run
from monitor.app.root import Monitor
config = Config.model_validate({{"history": {{"path": sys.argv[1]}},
                                 "clusters": [{{"name": "c", "bootstrap_servers": "127.0.0.1:1"}}],
                                 **json.loads(sys.argv[2])}})
problems = validate_for_run(config).problems
monitor = None if problems else Monitor(config)  # as `run`: no start with a problem
print(json.dumps([list(problems), monitor is not None and monitor.spark_source is not None,
                  [m for m in {SPARK_COLLECTION!r} if m in sys.modules]]))
"""


def _fresh(tmp_path, sections: dict) -> list:
    lines = fresh_interpreter_lines(_VALIDATE_AND_BUILD, argv=[str(tmp_path / "h.db"), json.dumps(sections)],
                                    timeout=120)
    return json.loads(lines[-1])


def test_a_kafka_only_monitor_never_imports_the_spark_collector(tmp_path):
    problems, has_spark, loaded = _fresh(tmp_path, {})
    assert problems == [] and not has_spark
    assert loaded == []


def test_a_monitor_with_a_spark_target_loads_it(tmp_path):
    problems, has_spark, loaded = _fresh(tmp_path, {"spark": {"ui_urls": ["http://127.0.0.1:1"]}})
    assert problems == [] and has_spark
    assert loaded == list(SPARK_COLLECTION)


def test_a_bad_spark_section_is_still_caught_before_the_start(tmp_path):
    """The checks of the section load the collector's rules only when there is a section to check."""
    problems, _, loaded = _fresh(tmp_path, {"spark": {"progress_topic": "progress", "progress_cluster": "nope"}})
    assert problems == ["invalid configuration: spark.progress_cluster: no cluster named 'nope' (clusters: c)"]
    assert "monitor.collection.spark_source" in loaded
