"""How values are encoded in history rows: statuses and time-lag methods as small integers, time
lags and Spark durations as integer milliseconds (4 bytes instead of an 8-byte REAL)."""
from __future__ import annotations

from collectors.models import Status, TimeLagMethod

# Status codes grow with badness (the enum's declaration order), so max(code) = worst status.
STATUS_CODE = {s: i for i, s in enumerate(Status)}
_CODE_STATUS = {i: s.value for s, i in STATUS_CODE.items()}
# Method codes grow as the estimate gets less exact, so max(code) = least exact in a bucket.
METHOD_CODE = {TimeLagMethod.NONE: 0, TimeLagMethod.EXACT: 1, TimeLagMethod.INTERPOLATED: 2}
_CODE_METHOD = {c: m.value for m, c in METHOD_CODE.items()}


def to_ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def to_seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def status_name(code: int | None) -> str | None:
    return None if code is None else _CODE_STATUS.get(code, "UNKNOWN")


def method_name(code: int | None) -> str | None:
    return None if code is None else _CODE_METHOD.get(code, "none")
