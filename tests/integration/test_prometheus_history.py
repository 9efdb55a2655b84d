"""The dashboard's history over a real Prometheus (`history.backend: prometheus`): a monitor
collects from the session broker, a real Prometheus scrapes it every second, and
`PrometheusHistory` / `PrometheusSnapshots` must answer what the embedded history and the
monitor's own snapshot say: the same lags, end offsets, statuses and clusters, at most
`max_points` points, per-partition series when they are exported and none (said so) when they
are not; basic auth and TLS against Prometheus' own web config; failures as errors that never
show the password.
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
import yaml

from collectors.models import Status
from demo.kafka_box import free_port
from demo.prometheus import DemoPrometheus, PrometheusUnavailable
from monitor.app.config import load_config
from monitor.app.root import Monitor
from monitor.storage.prometheus import PrometheusClient, PrometheusError, PrometheusHistory, PrometheusSnapshots
from monitor.storage.settings import PrometheusConfig
from tests.conftest import missing_prerequisite
from tests.helpers import wait_until
from tests.kafka_helpers import commit, create_topic, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CLUSTER = "prom"
PASSWORD = "fleet-test-password"
# bcrypt of PASSWORD (Prometheus' web config takes only bcrypt hashes)
PASSWORD_HASH = "$2b$04$ZDUZK6PFjqr.KhTbh7YxV.J9vHR99goM4EX4cr.h1eOaop6H8qkMu"


def started_prometheus(work: Path, targets, **kwargs) -> DemoPrometheus:
    prometheus = DemoPrometheus(work, targets, interval="1s", **kwargs)
    try:
        return prometheus.start()
    except PrometheusUnavailable as error:
        missing_prerequisite(str(error))
        raise


@pytest.fixture(scope="module")
def scraped(kafka_broker, tmp_path_factory):
    """(monitor, prometheus, topic, lagging group, caught-up group)."""
    work = tmp_path_factory.mktemp("prom-history")
    suffix = str(int(time.time() * 1000))[-7:]
    topic, lagging, caught_up = f"ph-{suffix}", f"ph-{suffix}-lagging", f"ph-{suffix}-done"
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=50, partitions=2)
    commit(kafka_broker.bootstrap, lagging, {(topic, 0): 10, (topic, 1): 10})
    commit(kafka_broker.bootstrap, caught_up, {(topic, 0): 50, (topic, 1): 50})
    config = load_config(overrides={
        "collection": {"interval_seconds": 1},
        "history": {"path": str(work / "history.db")},
        "web": {"port": 0},
        "exporter": {"partition_metrics": True},
        "alerting": {"enabled": False},
    }, environ={})
    config = with_cluster(config, kafka_broker.bootstrap, [f"ph-{suffix}-.*"], [topic])
    monitor = Monitor(config).start()
    prometheus = None
    try:
        prometheus = started_prometheus(work / "prometheus", f"127.0.0.1:{monitor.web.port}")
        wait_until(lambda: prometheus.query(f'streamscope_kafka_consumergroup_lag{{group="{lagging}"}}'), 90,
                   "Prometheus to scrape the lagging group")
        time.sleep(4)  # a few more scrapes: a range of points
        yield monitor, prometheus, topic, lagging, caught_up
    finally:
        if prometheus is not None:
            prometheus.stop()
        monitor.stop()


def with_cluster(config, bootstrap: str, groups: list[str], topics: list[str]):
    data = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["clusters"] = [{"name": CLUSTER, "bootstrap_servers": bootstrap,
                         "groups": {"allow": groups}, "topics": {"allow": topics}}]
    return type(config).model_validate(data)


def reader(prometheus: DemoPrometheus, **extra) -> PrometheusHistory:
    return PrometheusHistory(PrometheusClient(PrometheusConfig(url=prometheus.url, scrape_interval_seconds=1,
                                                               **extra)))


def test_group_series_agree_with_the_embedded_history(scraped):
    monitor, prometheus, topic, lagging, caught_up = scraped
    history = reader(prometheus)
    end = time.time()
    rows = history.group_series(CLUSTER, lagging, end - 120, end)
    embedded = monitor.history.kafka.group_series(CLUSTER, lagging, end - 120, end)
    assert rows and embedded
    last = rows[-1]
    assert (last["lag"], last["readable_lag"]) == (embedded[-1]["lag"], embedded[-1]["readable_lag"]) == (80, 80)
    assert last["status"] in {s.value for s in Status}
    assert last["time_lag_seconds"] is not None and last["time_lag_method"] in ("exact", "interpolated")
    assert all(a["at"] < b["at"] for a, b in zip(rows, rows[1:]))
    done = history.group_series(CLUSTER, caught_up, end - 120, end)
    assert done and done[-1]["lag"] == 0 and done[-1]["status"] == "OK"


def test_downsampling_by_step_keeps_at_most_max_points(scraped):
    _monitor, prometheus, _topic, lagging, _ = scraped
    history = reader(prometheus)
    end = time.time()
    full = history.group_series(CLUSTER, lagging, end - 60, end, max_points=500)
    few = history.group_series(CLUSTER, lagging, end - 60, end, max_points=3)
    assert len(full) > 3 >= len(few) >= 1
    assert few[-1]["lag"] == 80  # the max over each step of a constant lag


def test_topic_cluster_and_partition_series(scraped):
    monitor, prometheus, topic, lagging, _ = scraped
    history = reader(prometheus)
    end = time.time()
    topics = history.topic_series(CLUSTER, topic, end - 120, end)
    assert topics and topics[-1]["end_offset_sum"] == 100 and topics[-1]["under_replicated"] == 0
    cluster = history.cluster_series(CLUSTER, end - 120, end)
    assert cluster and cluster[-1]["ok"] and cluster[-1]["brokers"] == 1 and cluster[-1]["groups"] == 2
    assert cluster[-1]["total_lag"] == 80
    assert CLUSTER in history.clusters()
    assert history.per_partition_history
    partitions = history.partition_lag_series(CLUSTER, lagging, end - 120, end)
    assert {(p["topic"], p["partition"]) for p in partitions} == {(topic, 0), (topic, 1)}
    assert {p["lag"] for p in partitions[-2:]} == {40}
    rates = history.partition_rate_series(CLUSTER, topic, end - 120, end)
    assert {r["partition"] for r in rates} == {0, 1} and rates[-1]["end_offset"] == 50
    assert rates[-1]["rate"] == 0.0  # nothing produced since
    window = history.window(CLUSTER, "group", lagging, 30, end)
    assert window and all(r["lag"] == 80 for r in window)


def test_matchers_narrow_every_query(scraped):
    _monitor, prometheus, _topic, lagging, _ = scraped
    history = reader(prometheus, matchers=['job="not-streamscope"'])
    end = time.time()
    assert history.group_series(CLUSTER, lagging, end - 60, end) == []
    assert history.clusters() == []
    assert not history.per_partition_history


def test_latest_values_as_a_snapshot(scraped):
    monitor, prometheus, topic, lagging, caught_up = scraped
    client = PrometheusClient(PrometheusConfig(url=prometheus.url, scrape_interval_seconds=1))
    snap = PrometheusSnapshots(client, refresh_seconds=0.5).refresh()
    own = monitor.store.latest()
    assert snap is not None and own is not None
    (state,) = [c for c in snap.clusters if c.raw.cluster == CLUSTER]
    groups = {g.group: g for g in state.lag.groups}
    assert set(groups) == {lagging, caught_up}
    mine = {g.group: g for c in own.clusters for g in c.lag.groups}
    for name, g in groups.items():
        assert (g.lag, g.readable_lag, g.members, g.is_empty, g.topics) == \
               (mine[name].lag, mine[name].readable_lag, mine[name].members, mine[name].is_empty, mine[name].topics)
    assert [t.topic for t in state.lag.topics] == [topic] and state.lag.topics[0].end_offset_sum == 100
    assert len(state.raw.brokers) == 1 and not state.stale
    assert any(h.name == f"kafka:{CLUSTER}" and h.up for h in snap.health)


def test_unreachable_prometheus_is_an_error_and_no_snapshot(tmp_path):
    client = PrometheusClient(PrometheusConfig(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=2))
    with pytest.raises(PrometheusError):
        PrometheusHistory(client).group_series(CLUSTER, "g", 0, 60)
    assert PrometheusSnapshots(client, refresh_seconds=1).refresh() is None


def _self_signed(work: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = work / "prom.crt", work / "prom.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_basic_auth_and_tls(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
                                   "basic_auth_users": {"streamscope": PASSWORD_HASH}}))
    prometheus = started_prometheus(tmp_path / "tls", f"127.0.0.1:{free_port()}", web_config=web, tls=True)
    try:
        monkeypatch.setenv("PROM_PASSWORD", PASSWORD)
        monkeypatch.setenv("WRONG_PASSWORD", "not-" + PASSWORD)
        good = PrometheusConfig(url=prometheus.url, ca_file=cert, basic_auth_username="streamscope",
                                basic_auth_password={"env": "PROM_PASSWORD"})
        assert PrometheusClient(good).query("vector(7)")[0].last == 7.0
        wrong = good.model_copy(update={"basic_auth_password": good.basic_auth_password.model_copy(
            update={"env": "WRONG_PASSWORD"})})
        with pytest.raises(PrometheusError, match="401") as refused:
            PrometheusClient(wrong).query("vector(7)")
        assert PASSWORD not in str(refused.value)
        with pytest.raises(PrometheusError, match="(?i)certificate"):
            PrometheusClient(good.model_copy(update={"ca_file": None})).query("vector(7)")
        insecure = good.model_copy(update={"ca_file": None, "verify": False})
        assert PrometheusClient(insecure).query("vector(1)")[0].last == 1.0
    finally:
        prometheus.stop()


def test_serve_reads_the_groups_and_their_history_from_prometheus(scraped):
    import requests

    from monitor.app.dashboard import FleetDashboard

    _monitor, prometheus, topic, lagging, caught_up = scraped
    config = load_config(overrides={"web": {"port": 0}, "history": {
        "backend": "prometheus", "prometheus": {"url": prometheus.url, "scrape_interval_seconds": 1}}}, environ={})
    with FleetDashboard(config).start() as dashboard:
        base = dashboard.web.url
        groups = requests.get(f"{base}/api/v1/clusters/{CLUSTER}/groups", timeout=30).json()
        assert {g["group"]: g["lag"] for g in groups} == {lagging: 80, caught_up: 0}
        history = requests.get(f"{base}/api/v1/history/groups/{CLUSTER}/{lagging}", params={"seconds": 120},
                               timeout=30).json()
        assert history and history[-1]["lag"] == 80
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        assert "streamscope_build_info" in metrics and "streamscope_kafka_" not in metrics  # collects nothing
        page = requests.get(f"{base}/alerts", timeout=30)
        assert page.status_code == 200
