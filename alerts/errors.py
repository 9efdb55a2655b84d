"""Readable configuration errors: one message naming the file and the key."""
from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ValidationError


class AlertConfigError(ValueError):
    """Invalid alerting configuration or rule file. The message names the file and key."""


def format_loc(loc: Sequence[object], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(exc: ValidationError, *, source: str | None = None, prefix: str = "",
                            known_keys: "dict[tuple, Iterable[str]] | None" = None) -> str:
    """Render a pydantic ValidationError as `file: key.path: message` lines."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-")))
        key = format_loc(loc, prefix)
        etype = err.get("type", "")
        if etype == "extra_forbidden":
            bad = str(loc[-1]) if loc else "?"
            msg = f"unknown key '{bad}'"
            candidates = (known_keys or {}).get(tuple(p for p in loc[:-1] if not isinstance(p, int)))
            if candidates:
                close = difflib.get_close_matches(bad, list(candidates), n=1)
                if close:
                    msg += f" (did you mean '{close[0]}'?)"
        elif etype == "missing":
            msg = "required key is missing"
        else:
            msg = err.get("msg", "invalid value")
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
        if not loc and not prefix and source:  # a whole-model check: the source already says where
            lines.append(f"{source}: {msg}")
        else:
            lines.append(f"{source + ': ' if source else ''}{key}: {msg}")
    return "\n".join(lines)


def model_keys(model) -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(field.alias or name)
    return keys


def model_key_paths(model, path: tuple = (), seen: tuple = ()) -> dict[tuple, list[str]]:
    """The keys of `model` and of every model nested in it (in lists, tuples, optionals), by key
    path without list indexes: what `format_validation_error` suggests a close match from. A
    model nested in itself (a route's routes) is walked once."""
    out = {path: model_keys(model)}
    for name, field in model.model_fields.items():
        for nested in _models_in(field.annotation):
            if nested not in seen + (model,):
                out.update(model_key_paths(nested, path + (field.alias or name,), seen + (model,)))
    return out


def _models_in(annotation) -> list:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is dict:
        return []  # keys are data (property names), not known keys
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
