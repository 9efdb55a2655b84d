"""Finite and bounded: the one rule for every number a user gives streamscope.

Every numeric field of the configuration (each section's settings, `alerts.config`) and of rule files
(`alerts.rules`) is declared with one of these field factories, so a number is either finite and
within its bounds or rejected with a message naming the key. NaN and ±infinity are never
accepted (an infinite `group_wait` never sends, a NaN backoff never retries) and every duration
is capped, because timers and sleeps on absurd values overflow or silently never fire.

    timeout: Duration = seconds(10.0, gt=0, le=5 * MINUTE)   # Duration also takes "30s", "5m"
    interval_seconds: float = seconds(15.0, gt=0, le=HOUR)
    multiplier: float = number(2.0, ge=1, le=10)
    burst: int = count(1, ge=1, le=1000)

Each factory returns a pydantic `Field`; give bounds only through it (pydantic lets constraints
in an `Annotated` type override a field's own, so the caps could silently be lost otherwise).
"""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ._util import parse_duration

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
WEEK = 7 * DAY
# No duration streamscope waits, keeps or looks back over is longer than a year.
MAX_SECONDS = 366 * DAY
# No count streamscope measures (offsets, lag, rates) exceeds a Kafka offset (a signed 64-bit integer).
MAX_MAGNITUDE = float(2**63)


def seconds(default: Any, *, gt: float | None = None, le: float = MAX_SECONDS, **field: Any) -> Any:
    """A duration in seconds: finite, >= 0 (or > `gt`), at most `le` (itself at most MAX_SECONDS)."""
    if le > MAX_SECONDS:
        raise ValueError(f"le={le} exceeds MAX_SECONDS ({MAX_SECONDS:.0f})")
    return Field(default, gt=gt, ge=None if gt is not None else 0.0, le=le, allow_inf_nan=False, **field)


def number(default: Any, *, ge: float = -MAX_MAGNITUDE, gt: float | None = None, le: float = MAX_MAGNITUDE,
           **field: Any) -> Any:
    """A finite number within [ge, le] (or (gt, le]), never beyond ±MAX_MAGNITUDE."""
    if le > MAX_MAGNITUDE or ge < -MAX_MAGNITUDE:
        raise ValueError(f"bounds [{ge}, {le}] exceed ±MAX_MAGNITUDE")
    return Field(default, gt=gt, ge=None if gt is not None else ge, le=le, allow_inf_nan=False, **field)


def count(default: Any, *, ge: int, le: int, **field: Any) -> Any:
    """An integer within [ge, le] (an int is always finite; the cap is what matters)."""
    return Field(default, ge=ge, le=le, **field)


def _finite_duration(value: object) -> float:
    result = parse_duration(value)
    if not math.isfinite(result):
        raise ValueError(f"must be a finite duration, got {value!r}")
    return result


# A duration given as seconds or as text ("30s", "5m", "1h30m"); bound it with `seconds(...)`.
Duration = Annotated[float, BeforeValidator(_finite_duration)]
