"""Readable units for the dashboard: 1.2k msg/s, 3m 20s, 1.5 MB, "5s ago".

Every function takes None (unknown) and returns the placeholder "—" for it, so callers never
special-case missing values. Pure functions, no Dash imports: unit tested table-driven.
"""
from __future__ import annotations

import time
from datetime import datetime

from collectors.models import TimeLagMethod
from collectors.values import finite_float as _finite

MISSING = "—"

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BYTES = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def _trim(text: str) -> str:
    """'1.0' -> '1', '12.50' -> '12.5'."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def si(value, digits: int = 1) -> str:
    """Compact number with an SI suffix: 999, 1.2k, 12.3k, 4.5M. Small values keep decimals."""
    v = _finite(value)
    if v is None:
        return MISSING
    sign = "-" if v < 0 else ""
    a = abs(v)
    if round(a) >= 1000:
        for i, (factor, suffix) in enumerate(_SI):
            if a >= factor or (i == len(_SI) - 1):
                scaled = round(a / factor, digits)
                if scaled >= 1000 and i > 0:  # 999,960 -> "1M", not "1000k"
                    factor, suffix = _SI[i - 1]
                    scaled = round(a / factor, digits)
                return f"{sign}{_trim(f'{scaled:.{digits}f}')}{suffix}"
    if a >= 100 or a == int(a):
        return f"{sign}{a:.0f}"
    if a >= 10:
        return f"{sign}{_trim(f'{a:.1f}')}"
    return f"{sign}{_trim(f'{a:.2f}')}"


def count(value) -> str:
    """Message counts: exact below 10,000 ("9,876"), compact above ("12.3k")."""
    v = _finite(value)
    if v is None:
        return MISSING
    if abs(v) < 10_000:
        return f"{int(round(v)):,}"
    return si(v)


def lag(offsets, readable=None) -> str:
    """Offset lag, with what is left to read when that differs (transaction markers, aborted or
    open transactions): '3' or '3 (0 to read)'."""
    text = count(offsets)
    r = _finite(readable)
    if r is None or r == _finite(offsets):
        return text
    return f"{text} ({count(r)} to read)"


def integer(value) -> str:
    """Exact integer with thousands separators (offsets): 1,234,567."""
    v = _finite(value)
    if v is None:
        return MISSING
    return f"{int(v):,}"


def rate(value, unit: str = "msg/s") -> str:
    """1.2k msg/s; 0 msg/s; 4.3 msg/s."""
    v = _finite(value)
    if v is None:
        return MISSING
    return f"{si(v)} {unit}"


def duration(seconds) -> str:
    """850 ms, 2.5s, 42s, 3m 20s, 2h 5m, 3d 4h."""
    v = _finite(seconds)
    if v is None:
        return MISSING
    if v < 0:
        return "-" + duration(-v)
    if v == 0:
        return "0s"
    if v < 1:
        ms = round(v * 1000)
        return f"{ms} ms" if ms < 1000 else "1s"
    if v < 10:
        s = round(v, 1)
        return f"{_trim(f'{s:.1f}')}s" if s < 10 else "10s"
    total = int(round(v))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        m, s = divmod(total, 60)
        return f"{m}m {s}s" if s else f"{m}m"
    if total < 86400:
        h, rem = divmod(total, 3600)
        m = rem // 60
        return f"{h}h {m}m" if m else f"{h}h"
    d, rem = divmod(total, 86400)
    h = rem // 3600
    return f"{d}d {h}h" if h else f"{d}d"


def duration_ms(ms) -> str:
    v = _finite(ms)
    return MISSING if v is None else duration(v / 1000.0)


def bytes_(value) -> str:
    """Decimal units: 512 B, 1.5 kB, 1.5 MB, 2.3 GB."""
    v = _finite(value)
    if v is None:
        return MISSING
    a = abs(v)
    sign = "-" if v < 0 else ""
    for factor, suffix in _BYTES:
        if a >= factor:
            scaled = a / factor
            digits = 1 if scaled < 100 else 0
            return f"{sign}{_trim(f'{scaled:.{digits}f}')} {suffix}"
    return f"{sign}{int(a)} B"


def percent(value, digits: int = 0) -> str:
    """A fraction (0.25) as a percentage (25%)."""
    v = _finite(value)
    if v is None:
        return MISSING
    return f"{v * 100:.{digits}f}%"


def age(ts, now: float | None = None) -> str:
    """'5s ago', '3m 20s ago', 'never'."""
    t = _finite(ts)
    if t is None:
        return "never"
    now = time.time() if now is None else now
    delta = now - t
    if delta < 0.5:
        return "just now"
    return f"{duration(delta)} ago"


def timestamp(ts, with_date: bool = True) -> str:
    """Local time: '2026-11-24 13:05:02' (or '13:05:02')."""
    t = _finite(ts)
    if t is None:
        return MISSING
    dt = datetime.fromtimestamp(t)
    return dt.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def plot_time(ts) -> str:
    """Timestamps as plotly date strings in the server's local time ('2026-11-24 13:05:02.250')."""
    t = _finite(ts)
    if t is None:
        return ""
    return datetime.fromtimestamp(t).isoformat(sep=" ", timespec="milliseconds")


def time_lag(seconds, method: TimeLagMethod | str | None = None, lower_bound: bool = False) -> str:
    """'3m 20s (interpolated)', '≥ 2h (interpolated)', '1.2s (exact)', '0s' when caught up."""
    if isinstance(method, TimeLagMethod):
        method = method.value
    v = _finite(seconds)
    if v is None:
        return MISSING
    text = duration(v)
    if lower_bound:
        text = f"≥ {text}"
    if method and method != "none":
        text = f"{text} ({method})"
    return text


def eta(seconds, lag=None) -> str:
    """Catch-up ETA: 'caught up' (no lag), 'not catching up' (None with lag), '3m 20s'."""
    lag_v = _finite(lag)
    if lag_v is not None and lag_v <= 0:
        return "caught up"
    v = _finite(seconds)
    if v is None:
        return "not catching up" if lag_v else MISSING
    return duration(v)


def yes_no(value) -> str:
    if value is None:
        return MISSING
    return "yes" if value else "no"


def plot_text(value) -> str:
    """Escape a name for plotly: plotly.js renders a subset of HTML in text, hover text, legend
    entries and tick labels (<b>, <br>, <a href>...), so names must go through here to be shown
    as text. Newlines become spaces (plotly ignores them anyway)."""
    if value is None:
        return ""
    text = str(value)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    )


def shorten(text: str, limit: int = 40) -> str:
    """Cut a long name in the middle: 'clickstream-en…-slow'."""
    text = str(text)
    if len(text) <= limit:
        return text
    keep = limit - 1
    head = (keep + 1) // 2
    return text[:head] + "…" + text[len(text) - (keep - head):]
