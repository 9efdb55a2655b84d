"""Secrets never reach a log, at any level: a logging filter that masks known secret values.

The values are the ones streamscope resolved from `*_env` / `*_file` references (SASL passwords,
webhook URLs, tokens, SMTP and basic-auth passwords). Client libraries print them in forms of
their own: kafka-python logs the SASL request as a bytes repr at DEBUG
(`auth_bytes=b'user\\x00user\\x00password'`), urllib3 logs the request path of a Slack webhook.
So each secret is masked as written and in its escaped forms, and a URL also by its path, query
and password.

`install_secret_masking` puts one filter on every handler configured at that moment; the CLI
calls it after configuring logging, and the Kafka collector's child process (a fresh interpreter, so it
configures its own logging) calls it with the parent's values (`masked_secrets()`).
"""
from __future__ import annotations

import json
import logging
from typing import Iterable
from urllib.parse import quote, quote_plus, urlsplit

MASK = "***"
# Shorter values would mask ordinary words all over the log; such a secret is too weak to guard.
MIN_SECRET_LENGTH = 4


def _escaped_forms(value: str) -> set[str]:
    """`value` as repr(), a bytes repr, JSON and %-encoding print it. A repr escapes a single
    quote or not depending on the whole string it is part of: both variants are kept."""
    raw = value.encode("utf-8", "surrogatepass")
    return {
        repr(value + '"')[1:-2], repr("'" + value)[2:-1],
        repr(raw + b'"')[2:-2], repr(b"'" + raw)[3:-1],
        json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe=""),
    }


def secret_fragments(value: str) -> set[str]:
    """Every piece of text that would give `value` away in a log or an error message."""
    fragments = {value}
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is not None and parts.scheme and parts.netloc:
        if len(parts.path) > 1:
            fragments.add(parts.path)
            if parts.query:
                fragments.add(f"{parts.path}?{parts.query}")
        if parts.query:
            fragments.add(parts.query)
        if parts.password:
            fragments.add(parts.password)
    for fragment in list(fragments):
        fragments |= _escaped_forms(fragment)
    return {f for f in fragments if len(f) >= MIN_SECRET_LENGTH}


def mask_text(text: str, fragments: Iterable[str]) -> str:
    """`text` with every fragment replaced by MASK, longest first (a URL before its path)."""
    for fragment in sorted(fragments, key=len, reverse=True):
        if fragment in text:
            text = text.replace(fragment, MASK)
    return text


class SecretMaskingFilter(logging.Filter):
    """Masks secret values in a record's message, exception and stack text; keeps every record."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = tuple(sorted({s for s in secrets if s}))
        fragments: set[str] = set()
        for secret in self.secrets:
            fragments |= secret_fragments(secret)
        self._fragments = tuple(sorted(fragments, key=len, reverse=True))

    def mask(self, text: str) -> str:
        return mask_text(text, self._fragments)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._fragments:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it, as without the filter
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatted here (as the handler would) to mask the traceback; kept only if it must be.
            text = logging.Formatter().formatException(record.exc_info)
            if self.mask(text) != text:
                record.exc_text = text
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


_installed: SecretMaskingFilter | None = None


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    return [handler for logger in loggers for handler in logger.handlers]


def install_secret_masking(secrets: Iterable[str]) -> SecretMaskingFilter:
    """Mask `secrets` in every record of every handler configured now (the root logger's and
    any named logger's); replaces what an earlier call installed."""
    global _installed
    masking = SecretMaskingFilter(secrets)
    for handler in _all_handlers():
        if _installed is not None:
            handler.removeFilter(_installed)
        handler.addFilter(masking)
    _installed = masking
    return masking


def masked_secrets() -> tuple[str, ...]:
    """The secret values the installed filter masks (a child process masks the same)."""
    return _installed.secrets if _installed is not None else ()
