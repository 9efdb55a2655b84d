"""`finite_float`: the one coercion of loosely typed values the dashboard and the alert rules share."""
from __future__ import annotations

import enum

import pytest

from collectors.values import finite_float


class Level(enum.Enum):
    HIGH = 3


@pytest.mark.parametrize("value, expected", [
    (None, None), (True, None), (False, None), (float("nan"), None), (float("inf"), None),
    (float("-inf"), None), ("abc", None), ([1], None), ({}, None),
    (0, 0.0), (12, 12.0), (-1.5, -1.5), ("12.5", 12.5), (Level.HIGH, 3.0),
])
def test_finite_float(value, expected):
    assert finite_float(value) == expected
