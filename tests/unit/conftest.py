"""Fixtures shared by the unit tests."""
from __future__ import annotations

import pytest

from alerts.store import StateStore


@pytest.fixture
def store(tmp_path):
    """An empty alerting StateStore (SQLite file in tmp_path), closed after the test."""
    s = StateStore(tmp_path / "alerts.db")
    yield s
    s.close()
