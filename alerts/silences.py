"""Silences: label matchers plus a time range; matching alerts are not notified.

Same semantics as Alertmanager: a silence is *pending* before `starts_at`, *active* until
`ends_at`, then *expired*. Expiring an active silence sets `ends_at` to now; expiring a pending
one makes it expired immediately. A silence must have at least one matcher that does not match
the empty string (so a silence cannot accidentally mute everything).

Every silence is validated and serialised before it is stored, so what is stored can always be
listed. Limits (a violation is a `SilenceError` naming the key, HTTP 400):
- finite times; a silence lasts at most `MAX_SILENCE_SECONDS` (365 days) and starts at most that
  far ahead, so nothing can be muted "for ever";
- at most `MAX_MATCHERS` matchers of at most `MAX_MATCHER_CHARS` characters each, valid label
  names and regexes;
- `createdBy`, `comment` and `id` are strings of bounded length.
A stored row that cannot be read back (written by an older version or by hand) silences nothing:
it is skipped with one warning, and every other silence is still listed and applied.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collectors.values import finite_float

from ._util import format_duration, parse_duration, parse_timestamp, rfc3339, short_repr
from .matchers import Matcher, MatcherError
from .store import StateStore

log = logging.getLogger(__name__)

MAX_SILENCE_SECONDS = 365 * 86400.0  # the longest silence, and how far ahead one may start
MAX_MATCHERS = 32
MAX_MATCHER_CHARS = 1024  # label name + value (or regex) of one matcher
MAX_CREATED_BY_CHARS = 200
MAX_COMMENT_CHARS = 2000
MAX_ID_CHARS = 64


class SilenceError(ValueError):
    pass


class SilenceNotFound(KeyError):
    pass


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float
    updated_at: float

    def state(self, now: float) -> str:
        if now < self.starts_at:
            return "pending"
        if now < self.ends_at:
            return "active"
        return "expired"

    def is_active(self, now: float) -> bool:
        return self.state(now) == "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON-ready, Alertmanager API v2 `gettableSilence`-like, plus UNIX timestamps."""
        return {
            "id": self.id,
            "matchers": [m.to_dict() for m in self.matchers],
            "matchers_text": [str(m) for m in self.matchers],
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "updatedAt": rfc3339(self.updated_at),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "createdBy": self.created_by,
            "comment": self.comment,
            "status": {"state": self.state(now)},
        }

    def _row(self) -> dict[str, Any]:
        return {
            "id": self.id, "matchers": [{"name": m.name, "op": m.op, "value": m.value} for m in self.matchers],
            "starts_at": self.starts_at, "ends_at": self.ends_at, "created_by": self.created_by,
            "comment": self.comment, "created_at": self.created_at, "updated_at": self.updated_at,
        }

    @classmethod
    def _from_row(cls, row: Mapping[str, Any]) -> "Silence":
        """The silence a stored row holds; ValueError when it is not one this module would store."""
        times = {key: finite_float(row[key]) for key in ("starts_at", "ends_at", "created_at", "updated_at")}
        broken = sorted(key for key, value in times.items() if value is None)
        if broken:
            raise ValueError(f"{', '.join(broken)}: not a finite number")
        if times["ends_at"] < times["starts_at"]:
            raise ValueError("ends_at is before starts_at")
        texts = {key: row[key] for key in ("id", "created_by", "comment")}
        if not all(isinstance(value, str) for value in texts.values()):
            raise ValueError("id, created_by and comment must be text")
        silence = cls(matchers=_parse_matchers(json.loads(row["matchers"])), **texts, **times)
        _check_servable(silence)
        return silence


def _check_servable(silence: Silence) -> None:
    """Serialise it as the API will: what cannot be served is refused before it is stored."""
    json.dumps(silence.to_dict(silence.updated_at), allow_nan=False)


def _parse_matchers(matchers: Any) -> tuple[Matcher, ...]:
    if isinstance(matchers, (str, bytes)) or not isinstance(matchers, Sequence):
        raise SilenceError("matchers: expected a list")
    if not matchers:
        raise SilenceError("matchers: a silence needs at least one matcher")
    if len(matchers) > MAX_MATCHERS:
        raise SilenceError(f"matchers: at most {MAX_MATCHERS} matchers (got {len(matchers)})")
    out = []
    for i, m in enumerate(matchers):
        try:
            matcher = m if isinstance(m, Matcher) else Matcher.parse(m) if isinstance(m, str) else Matcher.from_dict(m)
        except MatcherError as exc:
            raise SilenceError(f"matchers[{i}]: {exc}") from None
        if len(matcher.name) + len(matcher.value) > MAX_MATCHER_CHARS:
            raise SilenceError(f"matchers[{i}]: at most {MAX_MATCHER_CHARS} characters of label name and value")
        out.append(matcher)
    if all(m.matches({}) for m in out):
        raise SilenceError("matchers: at least one matcher must not match the empty string "
                           "(this silence would mute everything)")
    return tuple(out)


def _timestamp(key: str, value: Any) -> float:
    ts = finite_float(parse_timestamp(value))
    if ts is None:
        raise SilenceError(f"{key}: invalid time {short_repr(value)} (use RFC 3339 like "
                           "2030-01-02T15:04:05Z, or UNIX seconds)")
    return ts


def _time_range(starts_at: Any, ends_at: Any, duration: Any, now: float) -> tuple[float, float]:
    """(start, end) of a new silence: finite, in order, ending in the future, bounded in length."""
    longest = format_duration(MAX_SILENCE_SECONDS)
    start = now if starts_at is None else _timestamp("startsAt", starts_at)
    if start > now + MAX_SILENCE_SECONDS:
        raise SilenceError(f"startsAt: a silence may start at most {longest} from now")
    if ends_at is not None and duration is not None:
        raise SilenceError("give endsAt or duration, not both")
    if ends_at is not None:
        key, end = "endsAt", _timestamp("endsAt", ends_at)
    elif duration is not None:
        try:
            key, end = "duration", start + parse_duration(duration)
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
    else:
        raise SilenceError("endsAt or duration is required")
    if end <= start:
        raise SilenceError(f"{key}: the silence must end after startsAt")
    if end - start > MAX_SILENCE_SECONDS:
        raise SilenceError(f"{key}: a silence may last at most {longest}")
    if end <= now:
        raise SilenceError(f"{key}: the silence would end in the past")
    return start, end


def _text(key: str, value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SilenceError(f"{key}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise SilenceError(f"{key}: at most {limit} characters (got {len(value)})")
    return value


class SilenceManager:
    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._unreadable_warned: set[str] = set()
        self._warn_lock = threading.Lock()

    def create(self, matchers: Sequence[str | Mapping[str, Any] | Matcher], *, starts_at: Any = None,
               ends_at: Any = None, duration: Any = None, created_by: Any = "", comment: Any = "",
               now: float | None = None, silence_id: Any = None) -> Silence:
        """Create (or, with `silence_id`, replace) a silence. `ends_at` or `duration` is required.
        Raises SilenceError naming the key (nothing stored), SilenceNotFound for an unknown id."""
        now = self._clock() if now is None else now
        parsed = _parse_matchers(matchers)
        start, end = _time_range(starts_at, ends_at, duration, now)
        created_by = _text("createdBy", created_by, MAX_CREATED_BY_CHARS)
        comment = _text("comment", comment, MAX_COMMENT_CHARS)
        created_at = now
        silence_id = _text("id", silence_id, MAX_ID_CHARS) or None  # "" = a new silence, as in Alertmanager
        if silence_id is not None:
            old = self.get(silence_id)
            if old.state(now) == "expired":
                raise SilenceError(f"id: silence {silence_id} is expired and cannot be changed")
            created_at = old.created_at
        silence = Silence(
            id=silence_id or str(uuid.uuid4()), matchers=parsed, starts_at=float(start), ends_at=float(end),
            created_by=created_by, comment=comment, created_at=created_at, updated_at=now,
        )
        self._save(silence)
        return silence

    def _save(self, silence: Silence) -> None:
        try:
            _check_servable(silence)
        except (ValueError, OverflowError, OSError) as exc:  # validation should have caught it; store nothing
            raise SilenceError(f"silence cannot be stored: {exc}") from None
        self._store.upsert_silence(silence._row())

    def _readable(self) -> list[Silence]:
        """Every stored silence that can be read; the others are skipped, each with one warning."""
        out = []
        for row in self._store.silence_rows():
            try:
                out.append(Silence._from_row(row))
            except (ValueError, TypeError, KeyError, OverflowError, OSError) as exc:
                self._warn_unreadable(short_repr(row.get("id")), exc)
        return out

    def _warn_unreadable(self, silence_id: str, exc: Exception) -> None:
        with self._warn_lock:
            if silence_id in self._unreadable_warned:
                return
            self._unreadable_warned.add(silence_id)
        log.warning("stored silence %s cannot be read and is ignored (it silences nothing): %s: %s",
                    silence_id, type(exc).__name__, short_repr(str(exc), 200))

    def get(self, silence_id: str) -> Silence:
        for silence in self._readable():
            if silence.id == silence_id:
                return silence
        raise SilenceNotFound(silence_id)

    def list(self, now: float | None = None, state: str | None = None) -> list[Silence]:
        now = self._clock() if now is None else now
        silences = sorted(self._readable(), key=lambda s: (s.starts_at, s.created_at, s.id))
        if state is not None:
            silences = [s for s in silences if s.state(now) == state]
        return silences

    def active(self, now: float) -> list[Silence]:
        return self.list(now, "active")

    def expire(self, silence_id: str, now: float | None = None) -> Silence:
        now = self._clock() if now is None else now
        old = self.get(silence_id)
        state = old.state(now)
        if state == "expired":
            return old
        starts = now if state == "pending" else old.starts_at
        new = Silence(old.id, old.matchers, starts, now, old.created_by, old.comment, old.created_at, now)
        self._save(new)
        return new


def silencing(silences: Iterable[Silence], labels: Mapping[str, str], now: float) -> list[str]:
    """Ids of the active silences that match `labels`."""
    return [s.id for s in silences if s.is_active(now) and s.matches(labels)]
