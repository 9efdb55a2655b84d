"""What every parser shares: `SparkParseError`, JSON decoding, Spark's time format, and lenient
readers of optional fields that are strict about shape."""
from __future__ import annotations

import calendar
import json
import math
import re
from typing import Any, Mapping


class SparkParseError(ValueError):
    """A Spark response was not what the parser expected."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")



def decode_json(text: str | bytes, source: str) -> Any:
    """Decode a JSON body; malformed JSON -> SparkParseError with the position and a snippet."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SparkParseError(source, f"body is not UTF-8: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        snippet = text[max(0, e.pos - 20): e.pos + 20].replace("\n", " ")
        raise SparkParseError(
            source, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg} (near {snippet!r})"
        ) from None


UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"\s*(Z|GMT|UTC|[+-]\d{2}:?\d{2})?$"
)


def parse_spark_time(value: Any, source: str = "", field: str = "time") -> float | None:
    """Spark REST/progress timestamps -> UNIX seconds.

    Accepts "2026-11-25T11:49:01.300GMT" (REST), "2026-11-25T11:51:56.000Z" (progress), an
    epoch-milliseconds number, or None. Spark's "no time" values (-1 ms, 1969-12-31T23:59:59.999GMT)
    give None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SparkParseError(source, f"{field}: expected a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        return None if value < 0 else float(value) / 1000.0
    if not isinstance(value, str):
        raise SparkParseError(source, f"{field}: expected a timestamp, got {type(value).__name__}")
    m = _TIME_RE.match(value.strip())
    if not m:
        raise SparkParseError(source, f"{field}: unrecognised timestamp {value!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if frac:
        secs += int(frac) / (10 ** len(frac))
    if tz and tz not in ("Z", "GMT", "UTC"):
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        secs -= sign * (hh * 3600 + mm * 60)
    return None if secs < 0 else float(secs)


def require_list(data: Any, source: str, what: str) -> list:
    if not isinstance(data, list):
        raise SparkParseError(source, f"expected a JSON list of {what}, got {type(data).__name__}")
    return data


def require_obj(data: Any, source: str, what: str) -> dict:
    if not isinstance(data, dict):
        raise SparkParseError(source, f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def optional_int(d: Mapping, key: str, source: str, ctx: str, default: int | None = None) -> int | None:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool):
        raise SparkParseError(source, f"{ctx}.{key}: expected an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return default
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise SparkParseError(source, f"{ctx}.{key}: expected an integer, got {v!r}")


def required_int(d: Mapping, key: str, source: str, ctx: str) -> int:
    v = optional_int(d, key, source, ctx)
    if v is None:
        raise SparkParseError(source, f"{ctx}: missing {key!r}")
    return v


def optional_float(d: Mapping, key: str, source: str, ctx: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {v!r}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):  # Kafka source metrics are strings; "NaN" also appears
        try:
            f = float(v)
        except ValueError:
            raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {v!r}") from None
    else:
        raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {type(v).__name__}")
    return None if math.isnan(f) or math.isinf(f) else f


def optional_str(d: Mapping, key: str, source: str, ctx: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise SparkParseError(source, f"{ctx}.{key}: expected a string, got {type(v).__name__}")
    return v


def required_str(d: Mapping, key: str, source: str, ctx: str) -> str:
    v = optional_str(d, key, source, ctx)
    if v is None or v == "":
        raise SparkParseError(source, f"{ctx}: missing {key!r}")
    return v


def optional_time(d: Mapping, key: str, source: str, ctx: str) -> float | None:
    return parse_spark_time(d.get(key), source, f"{ctx}.{key}")


MAX_ERROR_CHARS = 4000  # stack traces are kept, clipped: snapshots are stored every cycle


def clip_error(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …[clipped]"


# What Spark reports for a batch that was running when its query was stopped (or the
# SparkContext shut down): an interruption, not a failure of the query.
_INTERRUPTION_MARKERS = ("java.lang.InterruptedException", "ClosedByInterruptException",
                         "cancelled job group", "cancelled part of cancelled job group")


def is_interruption(error: str | None) -> bool:
    return bool(error) and any(m in error[:2000] for m in _INTERRUPTION_MARKERS)
