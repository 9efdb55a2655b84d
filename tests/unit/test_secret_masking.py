"""The logging filter that keeps secrets out of every log line, in the forms libraries print them."""
from __future__ import annotations

import io
import json
import logging

import pytest

from collectors import secret_masking
from collectors.secret_masking import SecretMaskingFilter, install_secret_masking, masked_secrets

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def logged(secrets, msg, *args, exc: BaseException | None = None) -> str:
    """What a handler with the filter writes for one record."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMaskingFilter(secrets))
    logger = logging.getLogger(f"test.masking.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        if exc is None:
            logger.debug(msg, *args)
        else:
            try:
                raise exc
            except type(exc):
                logger.exception(msg, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("secret, msg, args, expected", [
    # kafka-python at DEBUG: the SASL/PLAIN request as a bytes repr
    ("hunter2-pass", "Sending request %r", (b"alice\x00alice\x00hunter2-pass",), "Sending request b'alice\\x00alice\\x00***'"),
    # a quote makes repr() switch quotes or escape it: both forms are known
    ("pa'ss-word", "auth_bytes=%r", (b"u\x00u\x00pa'ss-word",), 'auth_bytes=b"u\\x00u\\x00***"'),
    ("pa'ss-word", "auth_bytes=%r", (b"\"u\x00pa'ss-word",), "auth_bytes=b'\"u\\x00***'"),
    ("pässwörd", "auth_bytes=%r", ("u\x00pässwörd".encode(),), "auth_bytes=b'u\\x00***'"),
    ("back\\slash", "config=%r", ({"sasl.password": "back\\slash"},), "config={'sasl.password': '***'}"),
    # urllib3 at DEBUG: the request path of a Slack webhook
    (SLACK, '%s://%s:%s "%s %s %s" %s %s', ("https", "hooks.slack.com", 443, "POST", "/services/T000/B000/XXXXSECRET",
                                             "HTTP/1.1", 200, 2), 'https://hooks.slack.com:443 "POST *** HTTP/1.1" 200 2'),
    (SLACK, "delivering to %s", (SLACK,), "delivering to ***"),
    ("https://h.example/hook?token=abcd1234", "GET %s", ("/hook?token=abcd1234",), "GET ***"),
    ("https://h.example:9093/am?token=abcd1234", "retrying %s", ("token=abcd1234",), "retrying ***"),
    ("https://am:s3cret-pw@h.example/api", "auth %s", ("s3cret-pw",), "auth ***"),
    # %-encoded (form bodies, URLs) and JSON-escaped (payload logs)
    ("a b&c/d+e", "body password=%s", ("a+b%26c%2Fd%2Be",), "body password=***"),
    ("pässwörd", "payload %s", (json.dumps({"p": "pässwörd"}),), 'payload {"p": "***"}'),
    # too short to mask without mangling every line; nothing else changes either
    ("abc", "abc def %s", ("abc",), "abc def abc"),
    ("long-secret-1", "no secret in %s", ("here",), "no secret in here"),
])
def test_secret_forms_are_masked(secret, msg, args, expected):
    assert logged([secret], msg, *args) == expected + "\n"


def test_traceback_text_is_masked():
    out = logged(["tok-12345678"], "send failed", exc=RuntimeError("401 for https://x/hook/tok-12345678"))
    assert "tok-12345678" not in out and "401 for https://x/hook/***" in out and "Traceback" in out


def test_record_without_secret_keeps_its_args_and_a_broken_format_is_left_to_the_handler():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %d", (5,), None)
    assert SecretMaskingFilter(["some-secret"]).filter(record) and record.args == (5,)
    broken = logging.LogRecord("x", logging.INFO, __file__, 1, "value %d %d", (5,), None)
    assert SecretMaskingFilter(["some-secret"]).filter(broken) and broken.args == (5,)


def test_install_covers_every_configured_handler_and_replaces_an_earlier_install(monkeypatch):
    monkeypatch.setattr(secret_masking, "_installed", None)
    root_stream, named_stream = io.StringIO(), io.StringIO()
    root_handler, named_handler = logging.StreamHandler(root_stream), logging.StreamHandler(named_stream)
    named = logging.getLogger("test.masking.own-handler")
    named.propagate = False
    logging.getLogger().addHandler(root_handler)
    named.addHandler(named_handler)
    first = second = None
    try:
        first = install_secret_masking(["first-secret"])
        second = install_secret_masking(["second-secret", "first-secret"])
        assert masked_secrets() == ("first-secret", "second-secret")
        assert first not in root_handler.filters and second in root_handler.filters
        logging.getLogger("test.masking.child").warning("a %s b %s", "first-secret", "second-secret")
        named.warning("c %s", "second-secret")
    finally:
        for handler in secret_masking._all_handlers():
            handler.removeFilter(first)
            handler.removeFilter(second)
        logging.getLogger().removeHandler(root_handler)
        named.removeHandler(named_handler)
    assert root_stream.getvalue() == "a *** b ***\n"
    assert named_stream.getvalue() == "c ***\n"
