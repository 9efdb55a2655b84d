"""What every configuration section builds on: strict models, references to secrets, and the one
error a bad configuration raises.

Each part owns its section (`monitor.collection.settings`, `monitor.storage.settings`,
`monitor.web.settings`, `alerts.config`); `monitor.app.config` composes them and loads the file.
"""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from alerts.secrets import Secret, SecretError, resolve_secret


class ConfigError(Exception):
    """Invalid configuration. The message names the offending key."""


class Strict(BaseModel):
    """A section: unknown keys are errors, values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_regexes(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return patterns


class SecretRef(Strict):
    """A secret named by an environment variable or a file, never written in the config."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self, what: str = "secret") -> Secret:
        """The secret (masked in every repr); ConfigError starting with `what` (the key naming it)
        if unset or unreadable."""
        try:
            return resolve_secret(value_env=self.env, value_file=None if self.file is None else str(self.file),
                                  what=what)
        except SecretError as exc:
            raise ConfigError(str(exc)) from None

    def describe(self) -> str:
        """Where the secret comes from, never its value."""
        return describe_source(self.env, None if self.file is None else str(self.file))


def describe_source(env: str | None, file: str | None) -> str:
    """"env NAME" or "file PATH": where a secret is read from."""
    return f"env {env}" if env else f"file {file}"
