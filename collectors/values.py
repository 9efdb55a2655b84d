"""Coercing loosely typed values (JSON, SQLite rows, duck-typed objects) to numbers."""
from __future__ import annotations

import math
from enum import Enum
from typing import Any


def finite_float(value: Any) -> float | None:
    """`value` as a finite float; None for None, booleans, NaN, ±infinity and anything `float()`
    refuses. An Enum member counts as its value."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Enum):
        value = value.value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
