"""The demo's Prometheus: scrapes the demo's streamscope and evaluates the shipped alert rules.

    prom = DemoPrometheus(work_dir, target="127.0.0.1:8050")
    prom.start()          # raises PrometheusUnavailable when the binary is not installed
    prom.url              # http://127.0.0.1:PORT (alerts page: /alerts, PromQL: /graph)
    prom.stop()

`start()` writes a config (scrape and rule evaluation every 5 s, no Alertmanager) and a copy of
alerts/prometheus/streamscope-rules.yml retuned with the demo's own thresholds and `for`
(demo/alert_rules.yaml, the same tuning the demo gives the built-in engine), so Prometheus'
ALERTS show what the dashboard's Alerts page shows. Prometheus runs in its own process group on
a free loopback port and is stopped through its pid: a Prometheus the Debian package started
(:9090) is left alone.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from alerts.rules import load_rules
from demo.kafka_box import _terminate, free_port, log_tail

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = REPO_ROOT / "alerts" / "prometheus" / "streamscope-rules.yml"
DEMO_RULE_OVERRIDES = Path(__file__).with_name("alert_rules.yaml")
INTERVAL = "5s"
READY_TIMEOUT_SECONDS = 60.0


class PrometheusUnavailable(RuntimeError):
    """No prometheus binary on this machine (Debian package `prometheus`)."""


class PrometheusError(RuntimeError):
    """Prometheus did not start; the message ends with its log tail."""


def find_prometheus() -> str | None:
    for candidate in (shutil.which("prometheus"), "/usr/bin/prometheus"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def number_text(value: float) -> str:
    """10000.0 -> "10000", 0.5 -> "0.5": how a threshold is written in PromQL and in text."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def duration_text(value: Any) -> str:
    """A rule file's `for` ("10s", or seconds as a number) as Prometheus writes durations."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{number_text(value)}s" if value else "0s"
    return str(value)


def retune_rule(rule: dict, old_threshold: float, threshold: float | None, for_: Any) -> dict:
    """A Prometheus alerting rule with a new threshold (the comparison against the old one in
    `expr`, and "threshold N" in its annotations) and/or `for`. ValueError naming the alert when
    `expr` does not compare against the old threshold exactly once."""
    rule = dict(rule)
    name = rule.get("alert")
    annotations = dict(rule.get("annotations") or {})
    if threshold is not None:
        old, new = number_text(old_threshold), number_text(threshold)
        expr, count = re.subn(rf"(>=?|<=?|==)(\s*){re.escape(old)}(?![\d.])", rf"\g<1>\g<2>{new}",
                              str(rule.get("expr", "")))
        if count != 1:
            raise ValueError(f"{name}: expr compares against {old} {count} times, expected once")
        rule["expr"] = expr
        annotations = {k: str(v).replace(f"threshold {old}", f"threshold {new}") for k, v in annotations.items()}
    if for_ is not None:
        old_for, new_for = str(rule.get("for", "0s")), duration_text(for_)
        rule["for"] = new_for
        annotations = {k: re.sub(rf"\b{re.escape(old_for)}\b", new_for, v) for k, v in annotations.items()}
    if annotations:
        rule["annotations"] = annotations
    return rule


def retuned_rule_file(shipped: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]],
                      defaults: Mapping[str, float]) -> dict:
    """The shipped Prometheus rule document with `overrides` (rule-file entries: name,
    threshold, for) applied to the alerts of the same name; `defaults` maps an alert name to the
    built-in threshold its expr uses. ValueError for an override no alert matches."""
    wanted = {str(o["name"]): o for o in overrides}
    seen: set[str] = set()
    groups = []
    for group in shipped.get("groups") or ():
        rules = []
        for rule in group.get("rules") or ():
            override = wanted.get(str(rule.get("alert")))
            if override is not None:
                seen.add(override["name"])
                rule = retune_rule(rule, defaults[override["name"]], override.get("threshold"), override.get("for"))
            rules.append(rule)
        groups.append({**group, "rules": rules})
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"no Prometheus alert named {', '.join(missing)} in the shipped rule file")
    return {**shipped, "groups": groups}


def demo_rule_file() -> dict:
    """alerts/prometheus/streamscope-rules.yml with demo/alert_rules.yaml's tuning."""
    overrides = yaml.safe_load(DEMO_RULE_OVERRIDES.read_text(encoding="utf-8"))["rules"]
    defaults = {r.name: r.effective_threshold for r in load_rules().rules}
    shipped = yaml.safe_load(SHIPPED_RULES.read_text(encoding="utf-8"))
    return retuned_rule_file(shipped, overrides, defaults)


def prometheus_config(target: str | Sequence[str], rule_files: Sequence[str | Path], interval: str = INTERVAL,
                      *, honor_labels: bool = False) -> dict:
    """Scrape streamscope at `target` (host:port, or several: a fleet's replicas, whose own
    `instance` label wins with `honor_labels`) and evaluate `rule_files`, every `interval`."""
    targets = [target] if isinstance(target, str) else list(target)
    job = {"job_name": "streamscope", "metrics_path": "/metrics", "scrape_interval": interval,
           "scrape_timeout": interval, "static_configs": [{"targets": targets}]}
    if honor_labels:
        job["honor_labels"] = True
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [job],
    }


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the demo dies (even by SIGKILL), so nothing is
    left behind (Linux prctl PR_SET_PDEATHSIG; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class DemoPrometheus:
    """A Prometheus process for the demo (see the module docstring)."""

    def __init__(self, work_dir: Path, target: str | Sequence[str], *, binary: str | None = None,
                 interval: str = INTERVAL, web_config: Path | None = None, tls: bool = False,
                 honor_labels: bool = False) -> None:
        self.work_dir = Path(work_dir)
        self.target = target
        self.binary = binary
        self.interval = interval
        # Prometheus' --web.config.file (TLS, basic auth): the tests of clients that need them
        self.web_config = web_config
        self.scheme = "https" if tls else "http"
        self.honor_labels = honor_labels
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.log_path = self.work_dir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> "DemoPrometheus":
        binary = self.binary or find_prometheus()
        if binary is None:
            raise PrometheusUnavailable("prometheus is not installed (Debian package prometheus)")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        rules = self.work_dir / "streamscope-rules.yml"
        rules.write_text(yaml.safe_dump(demo_rule_file(), sort_keys=False))
        config = self.work_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(self.target, [rules], self.interval, honor_labels=self.honor_labels), sort_keys=False))
        self.port = free_port()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={self.work_dir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d",
                 "--log.level=warn",
                 *([f"--web.config.file={self.web_config}"] if self.web_config else [])],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self._wait_ready(READY_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            _terminate(self.process, 20)
            self.process = None

    def query(self, expr: str, timeout: float = 10) -> list[dict]:
        """An instant PromQL query's result vector."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=timeout)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(f"prometheus exited with code {self.process.returncode}; "
                                      f"{self.log_path} ends with:\n{log_tail(self.log_path)}")
            try:
                # behind basic auth, an answer asking for it means it is up
                answer = requests.get(f"{self.url}/-/ready", timeout=2, verify=False)
                if answer.status_code == 200 or (self.web_config and answer.status_code == 401):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise PrometheusError(f"prometheus not ready after {timeout:.0f} s; {self.log_path} ends with:\n"
                              f"{log_tail(self.log_path)}")
