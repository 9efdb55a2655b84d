"""URL state (parse/serialise round trip) and server-side table queries."""
from __future__ import annotations

import pytest

from monitor.web.dashboard import tables, urlstate
from monitor.web.dashboard.urlstate import UrlState

HOSTILE = 'evil"\'<script>alert(1)</script>\n&x=1#frag?q=%20'


@pytest.mark.parametrize("state", [
    UrlState(),
    UrlState(page="/groups", cluster="demo", group="clickstream-enricher-slow", range="6h"),
    UrlState(page="/topics", cluster="prod.eu-1", topic="orders.v2", range="15m"),
    UrlState(page="/spark", app="app-20261124-0001", range="24h"),
    UrlState(page="/groups", cluster="demo", group=HOSTILE, range="1h"),
    UrlState(page="/groups", group="with space + plus", range="1h"),
    UrlState(page="/alerts"),
])
def test_round_trip(state):
    assert urlstate.parse(state.page, urlstate.serialise(state)) == state
    path, _, search = urlstate.href(state).partition("?")
    assert urlstate.parse(path, "?" + search) == state


def test_serialise_order_and_encoding():
    s = UrlState(page="/groups", cluster="demo", group="a&b=c", range="6h")
    assert urlstate.serialise(s) == "?cluster=demo&group=a%26b%3Dc&range=6h"
    assert urlstate.serialise(UrlState()) == "?range=1h"


def test_hostile_name_is_fully_encoded():
    search = urlstate.serialise(UrlState(group=HOSTILE))
    for ch in "<>\"'\n#&":
        assert ch not in search.replace("&range=", "").replace("?", "", 1).split("&")[0][6:]


@pytest.mark.parametrize("pathname, search, expected", [
    (None, None, UrlState()),
    ("/nowhere", "?range=99h", UrlState()),
    ("/groups/", "group=x", UrlState(page="/groups", group="x")),
    ("/topics", "?topic=&range=6h", UrlState(page="/topics", range="6h")),
    ("/groups", "?group=a&group=b", UrlState(page="/groups", group="a")),
    ("/", "?page=groups&group=g", UrlState(page="/groups", group="g")),
    ("/", "?page=%2Fspark", UrlState(page="/spark")),
    ("/topics", "?page=groups", UrlState(page="/topics")),  # the path wins
    ("/", "?page=nowhere", UrlState()),
])
def test_parse_defaults(pathname, search, expected):
    assert urlstate.parse(pathname, search) == expected


def test_from_params_and_page_href():
    s = urlstate.from_params("/groups", {"cluster": "demo", "group": ["g1", "g2"], "range": "bogus"})
    assert s == UrlState(page="/groups", cluster="demo", group="g1", range="1h")
    assert urlstate.page_href(s.with_(range="6h"), "/topics") == "/topics?cluster=demo&range=6h"
    assert UrlState(range="24h").range_seconds == 86400


# --------------------------------------------------------------------------------------------
# tables: DataTable custom filter/sort/page
# --------------------------------------------------------------------------------------------

ROWS = [
    {"id": "a", "group": "alpha", "lag": "1.2k", "_lag": 1200, "status": "WARN"},
    {"id": "b", "group": "beta", "lag": "5", "_lag": 5, "status": "OK"},
    {"id": "c", "group": "Gamma-web", "lag": "—", "_lag": None, "status": "OK"},
    {"id": "d", "group": "delta-web", "lag": "30k", "_lag": 30000, "status": "ERR"},
]
KEYS = {"lag": "_lag"}


@pytest.mark.parametrize("query, expected", [
    (None, ["a", "b", "c", "d"]),
    ("{lag} > 1000", ["a", "d"]),
    ("{lag} s> 1000", ["a", "d"]),
    ("{lag} >= 5 && {lag} < 2000", ["a", "b"]),
    ("{lag} = 5", ["b"]),
    ("{group} contains web", ["c", "d"]),
    ("{group} contains Gamma", ["c"]),
    ("{group} contains gamma", []),
    ("{group} icontains WEB", ["c", "d"]),
    ('{group} icontains "gamma"', ["c"]),
    ("{status} ne OK", ["a", "d"]),
    ("{lag} is blank", ["c"]),
    ("{group} datestartswith al", ["a"]),
    ("{nonsense", ["a", "b", "c", "d"]),  # unparsable: ignored
])
def test_filter(query, expected):
    page = tables.query(ROWS, filter_query=query, sort_keys=KEYS, page_size=10)
    assert sorted(r["id"] for r in page.rows) == expected


def test_sort_numeric_raw_values_none_last_both_ways():
    asc = tables.query(ROWS, sort_by=[{"column_id": "lag", "direction": "asc"}], sort_keys=KEYS)
    desc = tables.query(ROWS, sort_by=[{"column_id": "lag", "direction": "desc"}], sort_keys=KEYS)
    assert [r["id"] for r in asc.rows] == ["b", "a", "d", "c"]
    assert [r["id"] for r in desc.rows] == ["d", "a", "b", "c"]


def test_default_sort_and_paging():
    rows = [{"id": str(i), "_lag": i} for i in range(53)]
    page = tables.query(rows, page_current=2, page_size=25, default_sort=[("_lag", True)])
    assert page.page_count == 3 and page.total == 53 and page.page_current == 2
    assert [r["id"] for r in page.rows] == ["2", "1", "0"]
    clamped = tables.query(rows, page_current=99, page_size=25)
    assert clamped.page_current == 2


def test_visible_drops_raw_keys():
    assert tables.visible(ROWS[:1], ["group", "lag"]) == [{"group": "alpha", "lag": "1.2k", "id": "a"}]
