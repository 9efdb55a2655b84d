"""`requests` (and urllib3, charset_normalizer, idna: 5.5 MB, ~140 modules) is loaded by the
monitor only when something sends HTTP: a Spark target, an alert receiver, a Prometheus backend.
A monitor of Kafka alone, scraped and queried, never imports it (docs/performance.md)."""
from __future__ import annotations

import json

from tests.helpers import fresh_interpreter_lines

_BUILD_AND_SCRAPE = """
import json, sys
from werkzeug.test import Client
from monitor.app.config import Config
from monitor.app.root import Monitor
from monitor.web.server import DashboardOnFirstVisit
sections = json.loads(sys.argv[2])
monitor = Monitor(Config.model_validate({"history": {"path": sys.argv[1]},
                                         "clusters": [{"name": "c", "bootstrap_servers": "127.0.0.1:1"}],
                                         **sections}))
monitor.metrics.refresh()
client = Client(DashboardOnFirstVisit(monitor.web_context(), monitor.config.web))
codes = [client.get(path).status_code for path in ("/metrics", "/healthz", "/api/v1/clusters")]
print(json.dumps([codes, sorted(m for m in ("requests", "urllib3") if m in sys.modules)]))
"""


def _fresh(tmp_path, sections: dict) -> list:
    lines = fresh_interpreter_lines(_BUILD_AND_SCRAPE, argv=[str(tmp_path / "h.db"), json.dumps(sections)], timeout=120)
    return json.loads(lines[-1])


def test_a_kafka_only_monitor_never_imports_requests(tmp_path):
    codes, loaded = _fresh(tmp_path, {})
    assert codes[0] == 200 and codes[2] == 200
    assert loaded == []


def test_a_monitor_with_a_webhook_receiver_loads_requests_when_it_builds_the_receiver(tmp_path):
    codes, loaded = _fresh(tmp_path, {"alerting": {"receivers": {"webhook": [{"name": "w", "url": "http://127.0.0.1:9/"}]}}})
    assert codes[0] == 200 and loaded == ["requests", "urllib3"]
