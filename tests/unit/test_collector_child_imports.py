"""The collector's child process unpickles its settings: that must not import the parent's world.

A `CompiledFilter` defined in the configuration module made every child import pydantic, the
alerting and the derivation (numpy): ~45 MB per cluster of memory the child never used.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

from monitor.app.config import Config
from monitor.collection.kafka_source import collector_settings

ROOT = Path(__file__).resolve().parents[2]
PARENT_ONLY = ("numpy", "pydantic", "monitor", "alerts", "dash", "flask", "yaml")


def test_unpickling_the_collector_settings_imports_nothing_of_the_parent() -> None:
    config = Config.model_validate({"clusters": [{
        "name": "c", "bootstrap_servers": "broker:9092",
        "groups": {"allow": ["app-.*"], "deny": ["app-test"]}, "topics": {"deny": ["__.*"]},
    }]})
    payload = pickle.dumps(collector_settings(config.clusters[0]))
    probe = (
        "import pickle, sys\n"
        "settings = pickle.loads(sys.stdin.buffer.read())\n"
        "print(settings.group_filter('app-1'), settings.group_filter('app-test'), settings.topic_filter('__x'))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({PARENT_ONLY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], input=payload, capture_output=True, cwd=ROOT,
                         check=True, timeout=60).stdout.decode().splitlines()
    assert out == ["True False False", "[]"]
