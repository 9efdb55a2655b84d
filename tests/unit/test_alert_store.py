"""The alert state store's use of SQLite (alerts/store.py)."""
from __future__ import annotations

import pytest

from alerts.store import AlertRecord, EngineChanges, StateStore
from tests.helpers import SQLITE_STATUS_PAGECACHE_OVERFLOW, sqlite_status

T0 = 1_700_000_000.0


def _alert(i: int) -> AlertRecord:
    labels = {"alertname": "ConsumerGroupLagHigh", "severity": "warning", "cluster": "prod",
              "group": f"orders-consumer-{i:05d}", "topic": f"orders-{i % 97}"}
    annotations = {"summary": f"Consumer group orders-consumer-{i:05d} lags {i * 7} messages on orders-{i % 97}",
                   "description": "x" * 400}
    return AlertRecord(f"fp{i:08d}", "ConsumerGroupLagHigh", "lag", labels, annotations, "firing", float(i * 7),
                       T0, T0 + 60, T0 + 60, None, None, T0 + 60)


def test_the_stores_page_cache_stays_small_whatever_the_number_of_alerts(tmp_path) -> None:
    """3,000 firing alerts are ~2.5 MB of rows. The store keeps them in memory once read, so
    SQLite's page cache of its connection is bounded at `CACHE_KIB` (512 KiB) rather than SQLite's
    2,000 KiB: what a commit touches again comes from the OS's page cache. Every alert is stored."""
    before = sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW)
    if before is None:
        pytest.skip("SQLite's counters cannot be read here (tests.helpers.sqlite_status)")
    store = StateStore(tmp_path / "alerts.db")
    try:
        alerts = [_alert(i) for i in range(3000)]
        store.commit(EngineChanges(upsert_alerts=alerts))
        grown = sqlite_status(SQLITE_STATUS_PAGECACHE_OVERFLOW) - before
        assert grown < 768 * 1024, f"{grown / 2**20:.2f} MB of page cache"
        reopened = StateStore(tmp_path / "alerts.db")
        try:
            assert reopened.load_alerts() == {a.fingerprint: a for a in alerts}
        finally:
            reopened.close()
    finally:
        store.close()
