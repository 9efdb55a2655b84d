"""Small helpers shared by the alerting modules: durations, timestamps, fingerprints."""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from json.encoder import encode_basestring as _json_string  # json.dumps' own, ensure_ascii=False

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """Parse `30s`, `5m`, `1h30m`, `2d`, `500ms`, or a number of seconds, into seconds.

    Raises ValueError with a readable message on anything else (including negatives, NaN and
    infinity: a duration nobody can wait for is a mistake, never "for ever").
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    if isinstance(value, (int, float)):
        return _finite_seconds(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like '30s' or '5m', got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _finite_seconds(number, value)
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {short_repr(value)} (use e.g. 30s, 5m, 1h30m, 2d)")
    return _finite_seconds(total, value)


def _finite_seconds(seconds: float, given: object) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"duration must be a finite number of seconds, got {short_repr(given)}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {short_repr(given)}")
    return seconds


def short_repr(value: object, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: error messages echo input, never all of a huge one."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_duration(seconds: float) -> str:
    """Human readable duration: 0s, 45s, 5m, 1h30m, 2d3h."""
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
        return "∞"
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:.0f}ms"
    total = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            qty, total = divmod(total, size)
            parts.append(f"{qty}{unit}")
    return "".join(parts[:2]) or "0s"


def humanize_number(value: float) -> str:
    """1234567 -> '1.23M' (Prometheus `humanize` style, SI prefixes)."""
    if value is None:
        return "-"
    v = float(value)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.3g}{suffix}"
    if v == int(v):
        return str(int(v))
    return f"{v:.4g}"


def rfc3339(ts: float | None) -> str:
    """UNIX seconds -> RFC 3339 UTC with milliseconds; None -> Go's zero time (Alertmanager style)."""
    if ts is None:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(float(ts), tz=timezone.utc)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: object) -> float | None:
    """Accept UNIX seconds (or milliseconds when clearly ms), ISO-8601 strings, datetimes."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        return v / 1000.0 if v > 1e11 else v
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return parse_timestamp(float(text))
        except ValueError:
            pass
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parse_timestamp(dt)
    return None


def canonical_labels(labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), str(v)) for k, v in items))


def fingerprint(labels: Mapping[str, str]) -> str:
    """Stable 16-hex-digit identity of a label set (like Alertmanager's 64-bit fingerprint): the
    SHA-256 of the sorted pairs as compact JSON (`[["k","v"],...]`, non-ASCII as is). Written out
    rather than through `json.dumps`, whose generic encoder costs 3 times as much; the bytes are
    the same (tested), so stored alerts keep their identity."""
    data = "[" + ",".join(f"[{_json_string(k)},{_json_string(v)}]" for k, v in canonical_labels(labels)) + "]"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def stable_hash(*parts: object, length: int = 32) -> str:
    data = json.dumps([str(p) for p in parts], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:length]
