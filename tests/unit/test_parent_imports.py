"""`run`'s parent loads no Kafka client library: the collector's child process alone does
(`collectors.kafka.process`). kafka-python's protocol classes cost ~5 MB of the parent's memory,
made at import (measured: `bench/bench_parent_memory.py`, docs/performance.md, the thirty-fifth
pass), where an annotation of the log directories' module once brought them in."""
from __future__ import annotations

import json

from tests.helpers import fresh_interpreter_lines

_BUILD_AS_RUN = """
import json, sys
from monitor.app.config import Config
from monitor.app.preflight import validate_for_run
from monitor.app.root import Monitor
config = Config.model_validate({"history": {"path": sys.argv[1]},
                                "clusters": [{"name": "c", "bootstrap_servers": "127.0.0.1:1"}]})
problems = validate_for_run(config).problems
monitor = None if problems else Monitor(config)
print(json.dumps([list(problems), monitor is not None,
                  sorted(m for m in sys.modules if m.split(".")[0] in ("kafka", "confluent_kafka"))]))
"""


def test_the_parent_of_run_loads_no_kafka_client(tmp_path):
    problems, built, loaded = json.loads(fresh_interpreter_lines(_BUILD_AS_RUN, argv=[str(tmp_path / "h.db")],
                                                                 timeout=120)[-1])
    assert problems == [] and built
    assert loaded == []
