"""`streamscope demo` started as a user would: one command, no configuration, Spark on.

The command runs as a subprocess in its own process group (stopped through that group only:
SIGINT as Ctrl-C would, SIGKILL only if it outlives its deadline). Once it prints its summary,
within 120 s: the API shows the slow group's lag alert firing, the notification log shows it
delivered to both local receivers (webhook inbox and SMTP sink), the demo's Prometheus answers
`ALERTS{alertstate="firing"}`, and the topology has the Spark query -> clickstream-stats edge
with no internal topic. Then `b` + Enter (through a pipe) makes the Spark query's lag alert fire
and resolve. After Ctrl-C, nothing the demo started is left (its process group, its Prometheus).

Needs Java, pyspark with the cached Kafka connector jars, prometheus and aiosmtpd: skipped
outside CI when missing, failed in CI.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import missing_prerequisite
from tests.helpers import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
SLOW = "clickstream-enricher-slow"
START_TIMEOUT = 600  # Kafka, two Spark JVMs, the monitor and Prometheus on a busy 2-core box
ALERT_TIMEOUT = 120  # the bound, from the printed summary on


def prerequisites() -> None:
    from demo import jars

    checks = [(shutil.which("prometheus") is not None, "prometheus is not installed (Debian package prometheus)")]
    for module in ("pyspark", "aiosmtpd"):
        try:
            __import__(module)
            checks.append((True, ""))
        except ImportError:
            checks.append((False, f"{module} is not installed"))
    try:
        jars.java_executable()
        checks.append((jars.is_resolved("spark-kafka"), "the Spark Kafka connector jars are not cached"))
    except jars.PrerequisiteMissing as error:
        checks.append((False, str(error)))
    for ok, reason in checks:
        if not ok:
            missing_prerequisite(f"cannot run `streamscope demo`: {reason}")


class Demo:
    """The `streamscope demo` process: stderr collected line by line (and kept in a log file)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        script = Path(sys.executable).with_name("streamscope")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.log_path = data_dir / "demo-command.log"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*command, "demo", "--port", str(port), "--data-dir", str(data_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=env, cwd=data_dir, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log_path, "a") as log:
            for line in self.process.stderr:
                self.lines.append(line)
                log.write(line)
                log.flush()

    def text(self) -> str:
        return "".join(self.lines)

    def tail(self) -> str:
        return "".join(self.lines[-40:])

    def type(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def get(self, path: str):
        response = requests.get(self.url + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> int | None:
        """Ctrl-C to the demo's process group (only what this test started), bounded."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(180)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
                return None
        return self.process.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    prerequisites()
    demo = Demo(tmp_path_factory.mktemp("demo-command"), free_port())
    try:
        wait_until(lambda: "streamscope demo is running" in demo.text() or demo.process.poll() is not None,
                   START_TIMEOUT, "the demo's summary", interval=1.0)
        assert demo.process.poll() is None, f"streamscope demo exited:\n{demo.tail()}"
        demo.ready_at = time.monotonic()
        yield demo
    finally:
        demo.stop()


def firing(demo: Demo, alertname: str) -> list[dict]:
    return [a for a in demo.get("/api/v1/alerts?state=firing") if a["alertname"] == alertname]


def delivered(demo: Demo, alertname: str, status: str) -> set[str]:
    """Receivers a `status` notification about `alertname` was delivered to."""
    return {n["receiver"] for n in demo.get("/api/v1/alerts/notifications?limit=500")
            if n["result"] == "delivered" and n["status"] == status
            and any(a.startswith(alertname + " ") or a == alertname for a in n["alerts"])}


def test_summary_lists_every_url_and_what_to_try(demo):
    text = demo.text()
    for label in ("dashboard", "alerts", "metrics", "JSON API", "Kafka", "Spark UI", "webhook inbox",
                  "SMTP sink", "Prometheus", "What to try first"):
        assert re.search(rf"^\s*(\d\. )?{label}", text, re.MULTILINE), f"{label!r} missing from:\n{text}"
    assert f"{demo.url}/alerts" in text


def test_slow_group_alert_fires_is_delivered_and_prometheus_agrees(demo):
    deadline = demo.ready_at + ALERT_TIMEOUT

    def remaining() -> float:
        return max(1.0, deadline - time.monotonic())

    alerts = wait_until(lambda: [a for a in firing(demo, "StreamscopeConsumerLagHigh")
                                 if a["labels"].get("group") == SLOW],
                        remaining(), "the slow group's lag alert firing", interval=2.0)
    assert alerts[0]["value"] > 600
    wait_until(lambda: delivered(demo, "StreamscopeConsumerLagHigh", "FIRING") >= {"demo-webhook", "demo-mail"},
               remaining(), "the FIRING notification delivered to both local receivers", interval=2.0)
    prometheus = re.search(r"Prometheus\s+(http://127\.0\.0\.1:\d+)/alerts", demo.text()).group(1)

    def prometheus_firing():
        body = requests.get(f"{prometheus}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'},
                            timeout=10).json()
        return body["data"]["result"]

    series = wait_until(prometheus_firing, remaining(), "ALERTS firing in the demo's Prometheus", interval=2.0)
    assert any(s["metric"]["alertname"] == "StreamscopeConsumerLagHigh" for s in series), series
    inbox = re.search(r"webhook inbox\s+(http://\S+)", demo.text()).group(1)
    received = requests.get(inbox, timeout=10).json()
    assert received["webhook"] and received["email"]


def test_topology_is_complete_without_internal_topics(demo):
    def query_edge():
        topo = demo.get("/api/v1/clusters/demo/topology")
        labels = {n["id"]: n["label"] for n in topo["nodes"]}
        edges = [(labels.get(e["source"]), labels.get(e["target"])) for e in topo["edges"]]
        return topo if ("clickstream_stats", "clickstream-stats") in edges else None

    topo = wait_until(query_edge, ALERT_TIMEOUT, "the query -> clickstream-stats edge", interval=2.0)
    labels = {n["label"] for n in topo["nodes"]}
    assert {"producers", "clickstream", SLOW, "clickstream-stats-reader"} <= labels
    assert not {name for name in labels if name.startswith(("__", "streamscope-"))}, labels
    everything = {n["label"] for n in demo.get("/api/v1/clusters/demo/topology?internal=true")["nodes"]}
    assert "streamscope-progress" in everything
    (query,) = [q for q in demo.get("/api/v1/spark/queries") if q["query"] == "clickstream_stats"]
    assert query["output_topics"] == ["clickstream-stats"] and query["sink"] == "clickstream-stats (Kafka)"
    assert query["source_topics"] == ["clickstream"]


def test_burst_fires_and_resolves_the_spark_lag_alert(demo):
    demo.type("b")
    wait_until(lambda: "burst: 5,000 events queued" in demo.text(), 10, "the burst acknowledged")
    receivers = {"demo-webhook", "demo-mail"}

    def delivered_to_all(status: str) -> set[str] | None:
        got = delivered(demo, "StreamscopeSparkQueryLag", status)
        return got if got >= receivers else None

    fired = wait_until(lambda: delivered_to_all("FIRING"), 120, "the Spark query's lag alert delivered FIRING",
                       interval=2.0)
    resolved = wait_until(lambda: delivered_to_all("RESOLVED"), 180, "the Spark query's lag alert delivered RESOLVED",
                          interval=2.0)
    assert fired >= receivers and resolved >= receivers
    # the RESOLVED message tells the truth: the engine no longer has the alert firing
    firing = [a for a in demo.get("/api/v1/alerts?state=firing") if a["alertname"] == "StreamscopeSparkQueryLag"]
    assert firing == [], firing


def test_ctrl_c_stops_everything_the_demo_started(demo):
    prometheus = int(re.search(r"Prometheus\s+http://127\.0\.0\.1:(\d+)/", demo.text()).group(1))
    web = int(demo.url.rsplit(":", 1)[1])
    assert demo.stop() == 0, demo.tail()
    for port in (prometheus, web):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers after Ctrl-C"
    pgid = demo.process.pid
    try:
        wait_until(lambda: not group_members(pgid), 30, "the demo's process group to be empty", interval=0.5)
    except AssertionError:
        pytest.fail(f"left running after Ctrl-C: {group_members(pgid)}")


def group_members(pgid: int) -> list[str]:
    """Command lines of the processes of a process group (zombies included)."""
    members = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(entry)) == pgid:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
                members.append(f"{entry}: {command.decode(errors='replace')[:200]}")
        except OSError:
            continue
    return members
