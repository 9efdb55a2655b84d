"""monitor.web.views.format: readable units, table-driven."""
from __future__ import annotations

import math

import pytest

from collectors.models import TimeLagMethod
from monitor.web.views import format as fmt


@pytest.mark.parametrize("value, expected", [
    (None, "—"), (float("nan"), "—"), (float("inf"), "—"), ("abc", "—"), (True, "—"),
    (0, "0"), (0.5, "0.5"), (4.321, "4.32"), (12.34, "12.3"), (999, "999"), (999.6, "1k"),
    (1000, "1k"), (1234, "1.2k"), (12_345, "12.3k"), (999_960, "1M"), (1_234_567, "1.2M"),
    (2.5e9, "2.5G"), (3e12, "3T"), (-1500, "-1.5k"),
])
def test_si(value, expected):
    assert fmt.si(value) == expected


@pytest.mark.parametrize("value, expected", [
    (None, "—"), (0, "0 msg/s"), (1234.5, "1.2k msg/s"), (4.3, "4.3 msg/s"), (50, "50 msg/s"),
])
def test_rate(value, expected):
    assert fmt.rate(value) == expected


def test_rate_unit():
    assert fmt.rate(88.9, "rows/s") == "88.9 rows/s"


@pytest.mark.parametrize("value, expected", [
    (None, "—"), (0, "0"), (9_999, "9,999"), (10_000, "10k"), (12_345, "12.3k"), (2_000_000, "2M"),
])
def test_count(value, expected):
    assert fmt.count(value) == expected


@pytest.mark.parametrize("value, expected", [(None, "—"), (0, "0"), (1_234_567, "1,234,567")])
def test_integer(value, expected):
    assert fmt.integer(value) == expected


@pytest.mark.parametrize("seconds, expected", [
    (None, "—"), (0, "0s"), (0.25, "250 ms"), (0.9996, "1s"), (2.54, "2.5s"), (9.96, "10s"),
    (42, "42s"), (60, "1m"), (200, "3m 20s"), (3600, "1h"), (3720, "1h 2m"), (86400, "1d"),
    (90000, "1d 1h"), (-5, "-5s"), (math.nan, "—"),
])
def test_duration(seconds, expected):
    assert fmt.duration(seconds) == expected


@pytest.mark.parametrize("ms, expected", [(None, "—"), (1500, "1.5s"), (200_000, "3m 20s")])
def test_duration_ms(ms, expected):
    assert fmt.duration_ms(ms) == expected


@pytest.mark.parametrize("value, expected", [
    (None, "—"), (0, "0 B"), (512, "512 B"), (1500, "1.5 kB"), (1_500_000, "1.5 MB"),
    (250_000_000, "250 MB"), (2_345_000_000, "2.3 GB"),
])
def test_bytes(value, expected):
    assert fmt.bytes_(value) == expected


@pytest.mark.parametrize("value, expected", [(None, "—"), (0.25, "25%"), (1, "100%")])
def test_percent(value, expected):
    assert fmt.percent(value) == expected


@pytest.mark.parametrize("ts, now, expected", [
    (None, 100.0, "never"), (100.0, 100.2, "just now"), (95.0, 100.0, "5s ago"),
    (100.0 - 200, 100.0, "3m 20s ago"),
])
def test_age(ts, now, expected):
    assert fmt.age(ts, now) == expected


@pytest.mark.parametrize("seconds, method, lower, expected", [
    (None, TimeLagMethod.EXACT, False, "—"),
    (200, TimeLagMethod.INTERPOLATED, False, "3m 20s (interpolated)"),
    (1.25, TimeLagMethod.EXACT, False, "1.2s (exact)"),
    (7200, "interpolated", True, "≥ 2h (interpolated)"),
    (0, TimeLagMethod.NONE, False, "0s"),
    (5, None, False, "5s"),
])
def test_time_lag(seconds, method, lower, expected):
    assert fmt.time_lag(seconds, method, lower) == expected


@pytest.mark.parametrize("eta, lag, expected", [
    (None, 0, "caught up"), (None, 100, "not catching up"), (200, 100, "3m 20s"), (None, None, "—"),
])
def test_eta(eta, lag, expected):
    assert fmt.eta(eta, lag) == expected


def test_timestamp_and_plot_time_local():
    assert fmt.timestamp(None) == "—"
    assert len(fmt.timestamp(1_700_000_000)) == 19
    assert len(fmt.timestamp(1_700_000_000, with_date=False)) == 8
    assert fmt.plot_time(1_700_000_000.25).endswith(".250")
    assert fmt.plot_time(None) == ""


@pytest.mark.parametrize("name, expected", [
    ("plain", "plain"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("a&b", "a&amp;b"),
    ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
    ("line1\nline2\r\nline3", "line1 line2 line3"),
    ('quotes "\'', 'quotes "\''),
    (None, ""),
])
def test_plot_text_escapes_markup(name, expected):
    assert fmt.plot_text(name) == expected


def test_shorten_keeps_both_ends():
    assert fmt.shorten("short", 10) == "short"
    out = fmt.shorten("clickstream-enricher-slow", 15)
    assert len(out) == 15 and out.startswith("clicks") and out.endswith("slow") and "…" in out


def test_yes_no():
    assert (fmt.yes_no(True), fmt.yes_no(False), fmt.yes_no(None)) == ("yes", "no", "—")
