"""Silences: label matchers plus a time range; matching alerts are not notified.

Same semantics as Alertmanager: a silence is *pending* before `starts_at`, *active* until
`ends_at`, then *expired*. Expiring an active silence sets `ends_at` to now; expiring a pending
one makes it expired immediately. A silence must have at least one matcher that does not match
the empty string (so a silence cannot accidentally mute everything).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._util import parse_duration, parse_timestamp, rfc3339
from .matchers import Matcher, MatcherError
from .store import StateStore


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
        return cls(
            id=row["id"], matchers=tuple(Matcher.from_dict(m) for m in row["matchers"]),
            starts_at=row["starts_at"], ends_at=row["ends_at"], created_by=row["created_by"],
            comment=row["comment"], created_at=row["created_at"], updated_at=row["updated_at"],
        )


def _parse_matchers(matchers: Iterable[str | Mapping[str, Any] | Matcher]) -> tuple[Matcher, ...]:
    out = []
    for m in matchers:
        try:
            if isinstance(m, Matcher):
                out.append(m)
            elif isinstance(m, str):
                out.append(Matcher.parse(m))
            elif isinstance(m, Mapping):
                out.append(Matcher.from_dict(m))
            else:
                raise SilenceError(f"invalid matcher {m!r}")
        except (MatcherError, KeyError) as exc:
            raise SilenceError(f"invalid matcher {m!r}: {exc}") from None
    if not out:
        raise SilenceError("a silence needs at least one matcher")
    if all(m.matches({}) for m in out):
        raise SilenceError("at least one matcher must not match the empty string (this silence would mute everything)")
    return tuple(out)


class SilenceManager:
    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def create(self, matchers: Sequence[str | Mapping[str, Any] | Matcher], *, starts_at: Any = None,
               ends_at: Any = None, duration: Any = None, created_by: str = "", comment: str = "",
               now: float | None = None, silence_id: str | None = None) -> Silence:
        """Create (or, with `silence_id`, replace) a silence. `ends_at` or `duration` is required."""
        now = self._clock() if now is None else now
        parsed = _parse_matchers(matchers)
        start = now if starts_at is None else parse_timestamp(starts_at)
        if start is None:
            raise SilenceError(f"invalid starts_at {starts_at!r}")
        if ends_at is not None:
            end = parse_timestamp(ends_at)
            if end is None:
                raise SilenceError(f"invalid ends_at {ends_at!r}")
        elif duration is not None:
            try:
                end = start + parse_duration(duration)
            except ValueError as exc:
                raise SilenceError(f"duration: {exc}") from None
        else:
            raise SilenceError("ends_at or duration is required")
        if end <= start:
            raise SilenceError("ends_at must be after starts_at")
        if end <= now:
            raise SilenceError("ends_at is in the past")
        created_at = now
        if silence_id is not None:
            old = self.get(silence_id)
            if old.state(now) == "expired":
                raise SilenceError(f"silence {silence_id} is expired and cannot be changed")
            created_at = old.created_at
        silence = Silence(
            id=silence_id or str(uuid.uuid4()), matchers=parsed, starts_at=float(start), ends_at=float(end),
            created_by=str(created_by)[:200], comment=str(comment)[:2000], created_at=created_at, updated_at=now,
        )
        self._store.upsert_silence(silence._row())
        return silence

    def get(self, silence_id: str) -> Silence:
        for row in self._store.silence_rows():
            if row["id"] == silence_id:
                return Silence._from_row(row)
        raise SilenceNotFound(silence_id)

    def list(self, now: float | None = None, state: str | None = None) -> list[Silence]:
        now = self._clock() if now is None else now
        silences = sorted((Silence._from_row(r) for r in self._store.silence_rows()),
                          key=lambda s: (s.starts_at, s.created_at, s.id))
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
        self._store.upsert_silence(new._row())
        return new


def silencing(silences: Iterable[Silence], labels: Mapping[str, str], now: float) -> list[str]:
    """Ids of the active silences that match `labels`."""
    return [s.id for s in silences if s.is_active(now) and s.matches(labels)]
