"""Secrets that never show up in logs, reprs, pages or metrics.

Configuration never holds a secret value: it holds where to read it (`*_env` or `*_file`), and
`resolve_secret` turns that into a `Secret` whose `repr`/`str`/`format` are `***`. Only the
notifiers call `Secret.get()`, right before sending.
"""
from __future__ import annotations

import os
from pathlib import Path

from collectors.secret_masking import MASK, mask_text, secret_fragments


class SecretError(ValueError):
    pass


class Secret:
    """A string that refuses to be printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret value must be a string")
        object.__setattr__(self, "_value", value)

    def get(self) -> str:
        return self._value

    def __setattr__(self, name, value):  # immutable
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        raise TypeError("Secret cannot be pickled")

    def redact(self, text: str) -> str:
        """Remove the secret (and, for URLs, its path/query/credentials) from `text`."""
        return redact(text, self)


def redact(text: object, *secrets: "Secret | None") -> str:
    """`text` without the secrets (and, for URLs, their path/query/credentials)."""
    fragments: set[str] = set()
    for secret in secrets:
        if secret:
            fragments |= secret_fragments(secret.get())
    return mask_text(str(text), fragments)


def resolve_secret(*, value_env: str | None = None, value_file: str | None = None, what: str = "secret",
                   environ: "dict[str, str] | None" = None) -> Secret:
    """Read a secret from an environment variable or a file (trailing newline stripped)."""
    env = os.environ if environ is None else environ
    if value_env:
        raw = env.get(value_env)
        if raw is None or raw.strip() == "":
            raise SecretError(f"{what}: environment variable {value_env} is not set or empty")
        return Secret(raw.strip())
    if value_file:
        path = Path(value_file)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"{what}: cannot read file {value_file}: {exc.strerror or exc}") from None
        raw = raw.strip()
        if not raw:
            raise SecretError(f"{what}: file {value_file} is empty")
        return Secret(raw)
    raise SecretError(f"{what}: neither an environment variable nor a file is configured")
