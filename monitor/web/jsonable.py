"""Snapshot values as JSON: the API's one conversion."""
from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import Any


def to_jsonable(value: Any, *, leave_out: tuple[str, ...] = ()) -> Any:
    """Dataclasses and named tuples (objects), enums, tuples and non-finite floats → plain JSON types.
    `leave_out`: a dataclass's fields not converted (a group's partitions in a list of groups)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in leave_out}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # the models' per-partition records
        return {name: to_jsonable(v) for name, v in zip(value._fields, value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):  # records made when read
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value
