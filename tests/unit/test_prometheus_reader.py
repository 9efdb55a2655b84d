"""The Prometheus history's pure parts and its configuration: selectors that no name can break,
results merged by field and time, the latest values as a snapshot (a group exported by two
replicas shown once), the config's validation naming the key, and the client's headers (bearer
token, extra headers) seen by a real local HTTP server."""
from __future__ import annotations

import pytest

from collectors.models import Status, TimeLagMethod
from monitor.app.config import load_config
from monitor.settings import ConfigError
from monitor.storage.prometheus.client import PrometheusClient, PrometheusError, Series, escape
from monitor.storage.prometheus.history import PrometheusHistory, by_time, fields, worst_status
from monitor.storage.prometheus.latest import build_snapshot
from monitor.storage.settings import PrometheusConfig
from tests.http_standin import RecordingReceiver


def test_selector_escapes_names_and_adds_matchers():
    client = PrometheusClient(PrometheusConfig(url="http://prom:9090", matchers=['job="streamscope"']))
    group = 'we"ird\\group\nname'
    assert escape(group) == 'we\\"ird\\\\group\\nname'
    assert client.selector("m", cluster="c", group=group) == \
        'm{cluster="c",group="we\\"ird\\\\group\\nname",job="streamscope"}'
    assert PrometheusClient(PrometheusConfig(url="http://prom:9090")).selector("m") == "m"


def test_fields_are_told_apart_and_merged_by_time():
    expr = fields({"lag": "a", "status": "b"})
    assert expr == 'label_replace(a, "ss_field", "lag", "", "") or label_replace(b, "ss_field", "status", "", "")'
    rows = by_time([
        Series({"ss_field": "lag"}, ((10.0, 5.0), (20.0, 7.0))),
        Series({"ss_field": "status", "status": "OK"}, ((10.0, 1.0), (20.0, 1.0))),
        Series({"ss_field": "status", "status": "STOP"}, ((10.0, 0.0), (20.0, 1.0))),
    ])
    assert rows[10.0]["lag"] == 5.0 and worst_status(rows[10.0]) == "OK"
    assert worst_status(rows[20.0]) == "STOP"  # the worst status of the step, as the embedded history keeps
    assert worst_status({"lag": 1.0}) is None


def _series(name: str, value: float, **labels: str) -> Series:
    return Series({"__name__": name, **labels}, ((100.0, value),))


def test_latest_snapshot_from_series_shows_a_doubly_exported_group_once():
    g = {"cluster": "c", "group": "g"}
    series = [
        _series("streamscope_kafka_consumergroup_lag", 30, topic="t", instance="a", **g),
        _series("streamscope_kafka_consumergroup_lag", 30, topic="t", instance="b", **g),  # a takeover
        _series("streamscope_kafka_consumergroup_lag", 12, topic="u", instance="a", **g),
        _series("streamscope_kafka_consumergroup_lag_seconds", 9.5, topic="t", instance="a", **g),
        _series("streamscope_kafka_consumergroup_lag_seconds_exact", 1, topic="t", instance="a", **g),
        _series("streamscope_kafka_consumergroup_consume_rate", 2.0, topic="t", instance="a", **g),
        _series("streamscope_kafka_consumergroup_status", 1, status="WARN", instance="a", **g),
        _series("streamscope_kafka_consumergroup_status", 0, status="OK", instance="a", **g),
        _series("streamscope_kafka_consumergroup_members", 2, instance="a", **g),
        _series("streamscope_kafka_consumergroup_info", 1, state="Stable", instance="a", **g),
        _series("streamscope_kafka_consumergroup_eta_seconds", float("inf"), instance="a", **g),
        _series("streamscope_kafka_topic_produce_rate", 3.0, cluster="c", topic="t", instance="a"),
        _series("streamscope_kafka_topic_end_offset", 500, cluster="c", topic="t", instance="a"),
        _series("streamscope_kafka_brokers", 3, cluster="c", instance="a"),
        _series("streamscope_collector_up", 1, collector="kafka:c", kind="kafka", instance="a"),
        _series("streamscope_collector_up", 0, collector="kafka:c", kind="kafka", instance="b"),
    ]
    snap = build_snapshot(series, at=100.0)
    (state,) = snap.clusters
    (group,) = state.lag.groups
    assert (group.group, group.lag, group.topics, group.members, group.state) == ("g", 42, ("t", "u"), 2, "Stable")
    assert group.status is Status.WARN and group.time_lag_seconds == 9.5
    assert group.time_lag_method is TimeLagMethod.EXACT
    assert group.consume_rate == 2.0 and group.produce_rate == 3.0
    assert group.eta_seconds is None  # +Inf: not catching up, never an infinite number on a page
    assert [tuple(t) for t in group.topic_lags] == [("t", 30, 30, 9.5, TimeLagMethod.EXACT, False, 2.0),
                                                    ("u", 12, 12, None, TimeLagMethod.NONE, False, None)]
    assert len(state.raw.brokers) == 3 and [t.topic for t in state.lag.topics] == ["t"]
    assert not state.stale  # one replica reaches the cluster
    assert sorted(h.name for h in snap.health) == ["kafka:c @ a", "kafka:c @ b"]


def test_config_backend_needs_its_url_and_names_the_key():
    with pytest.raises(ConfigError, match="history: .*backend.*prometheus.url"):
        load_config(overrides={"history": {"backend": "prometheus"}}, environ={})
    with pytest.raises(ConfigError, match="history.prometheus.matchers"):
        load_config(overrides={"history": {"prometheus": {"url": "http://p:9090", "matchers": ["job=x"]}}},
                    environ={})
    with pytest.raises(ConfigError, match="history.prometheus.headers.*secret"):
        load_config(overrides={"history": {"prometheus": {"url": "http://p:9090",
                                                          "headers": {"Authorization": "x"}}}}, environ={})
    with pytest.raises(ConfigError, match="history.prometheus.url"):
        load_config(overrides={"history": {"prometheus": {"url": "prom:9090"}}}, environ={})
    config = load_config(overrides={"history": {"backend": "prometheus",
                                                "prometheus": {"url": "https://p:9090/prefix"}}}, environ={})
    assert config.history.prometheus.url == "https://p:9090/prefix" and config.history.backend == "prometheus"


def test_a_flag_sets_one_nested_key_and_keeps_the_files_others(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("history:\n  prometheus: {url: 'http://old:9090', matchers: ['job=\"s\"']}\n")
    config = load_config(path, overrides={"history": {"backend": "prometheus",
                                                      "prometheus": {"url": "http://new:9090"}}}, environ={})
    assert config.history.prometheus.url == "http://new:9090"
    assert config.history.prometheus.matchers == ['job="s"']


def test_client_sends_bearer_token_and_headers_and_hides_the_token(monkeypatch):
    monkeypatch.setenv("PROM_TOKEN", "tok-123-secret")
    with RecordingReceiver() as server:
        config = PrometheusConfig(url=server.url, bearer_token={"env": "PROM_TOKEN"},
                                  headers={"X-Scope-OrgID": "tenant-1"})
        with pytest.raises(PrometheusError) as error:  # the stand-in answers "ok", not the API's JSON
            PrometheusClient(config).query("up")
        (request,) = server.requests
    assert request.headers["Authorization"] == "Bearer tok-123-secret"
    assert request.headers["X-Scope-OrgID"] == "tenant-1"
    assert request.path == "/api/v1/query" and b"query=up" in request.body
    assert "tok-123-secret" not in str(error.value)


class _RangeClient:
    """Answers every range query with `series` and records the query (pure logic only)."""

    def __init__(self, series: list[Series]) -> None:
        self.config = PrometheusConfig(url="http://prom:9090", scrape_interval_seconds=10)
        self.series = series
        self.queries: list[str] = []

    def selector(self, name: str, **labels: str) -> str:
        return PrometheusClient(self.config).selector(name, **labels)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        self.queries.append(expr)
        return self.series


def test_commit_history_from_the_exported_committed_offsets():
    """Each change of a partition's exported committed offset is a commit, dated by the step that
    first showed it, the step before as its lower end; the last `limit` per partition."""
    client = _RangeClient([
        Series({"topic": "t", "partition": "1"}, ((10.0, 5.0), (20.0, 5.0), (30.0, 9.0), (40.0, 12.0))),
        Series({"topic": "t", "partition": "0"}, ((10.0, 3.0), (20.0, float("nan")), (30.0, 4.0))),
    ])
    history = PrometheusHistory(client)
    commits = history.commit_history("c", "g", 0.0, 50.0, limit=2)
    assert [(c["partition"], c["offset"], c["at"], c["after"]) for c in commits] == [
        (0, 3, 10.0, None), (0, 4, 30.0, 10.0), (1, 9, 30.0, 20.0), (1, 12, 40.0, 30.0)]
    assert "streamscope_kafka_consumergroup_partition_committed_offset" in client.queries[0]
    assert history.commit_history("c", "g", 50.0, 0.0) == []
    with pytest.raises(ValueError):
        history.commit_history("c", "g", 0.0, 50.0, limit=0)


def test_latest_values_are_read_from_the_last_refresh_never_asked_by_a_page():
    """Pages and the API call `latest()`: it answers from the last refresh and never queries
    Prometheus itself (the service's thread does, every refresh_seconds)."""
    from monitor.storage.prometheus.latest import PrometheusSnapshots

    class CountingClient:
        config = PrometheusConfig(url="http://prom:9090")

        def __init__(self):
            self.queries = 0

        def query(self, expr, at):
            self.queries += 1
            return [Series({"__name__": "streamscope_kafka_brokers", "cluster": "c"}, ((at, 3.0),))]

    client = CountingClient()
    snapshots = PrometheusSnapshots(client, refresh_seconds=60, clock=lambda: 100.0)
    assert [snapshots.latest() for _ in range(3)] == [None] * 3 and client.queries == 0
    refreshed = snapshots.refresh()
    assert client.queries == 1 and snapshots.latest() is refreshed
    assert [c.raw.cluster for c in refreshed.clusters] == ["c"]
    assert snapshots.latest() is refreshed and client.queries == 1
