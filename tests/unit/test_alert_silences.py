"""Silences are validated and serialised before they are stored; stored rows that cannot be read
are skipped with one warning (pure: a SQLite store in tmp_path, injected times)."""
from __future__ import annotations

import json
import logging
import math
import sqlite3

import pytest

from alerts.silences import (MAX_COMMENT_CHARS, MAX_MATCHERS, MAX_SILENCE_SECONDS, SilenceError, SilenceManager,
                             SilenceNotFound)
from alerts.store import StateStore

NOW = 1_790_000_000.0
GOOD = ['group="orders"']


# Each row: the keyword arguments of SilenceManager.create and the key its error must name.
BAD = [
    pytest.param({"ends_at": 1e300}, "endsAt", id="endsAt 1e300"),
    pytest.param({"ends_at": math.inf}, "endsAt", id="endsAt 1e400 (inf)"),
    pytest.param({"ends_at": -math.inf}, "endsAt", id="endsAt -inf"),
    pytest.param({"ends_at": math.nan}, "endsAt", id="endsAt NaN"),
    pytest.param({"starts_at": math.nan, "duration": "1h"}, "startsAt", id="startsAt NaN"),
    pytest.param({"starts_at": -math.inf, "duration": "1h"}, "startsAt", id="startsAt -inf"),
    pytest.param({"starts_at": "NaN", "duration": "1h"}, "startsAt", id="startsAt 'NaN'"),
    pytest.param({"duration": math.inf}, "duration", id="duration 1e400 (inf)"),
    pytest.param({"duration": "1e400"}, "duration", id="duration '1e400'"),
    pytest.param({"duration": math.nan}, "duration", id="duration NaN"),
    pytest.param({"duration": MAX_SILENCE_SECONDS + 1}, "duration", id="duration over a year"),
    pytest.param({"starts_at": NOW + MAX_SILENCE_SECONDS + 60, "duration": "1h"}, "startsAt",
                 id="starts over a year ahead"),
    pytest.param({"starts_at": NOW - 2 * MAX_SILENCE_SECONDS, "ends_at": NOW + 60}, "endsAt",
                 id="started two years ago"),
    pytest.param({"ends_at": NOW + 60, "duration": "1h"}, "not both", id="endsAt and duration"),
    pytest.param({"matchers": ['group=~"(unclosed"'], "duration": "1h"}, "matchers[0]", id="bad regex"),
    pytest.param({"matchers": ['group="a"', "9bad=x"], "duration": "1h"}, "matchers[1]", id="bad label name"),
    pytest.param({"matchers": [f'group="g{i}"' for i in range(MAX_MATCHERS + 1)], "duration": "1h"}, "matchers",
                 id="too many matchers"),
    pytest.param({"matchers": [f'group="{"x" * 2000}"'], "duration": "1h"}, "matchers[0]", id="huge matcher"),
    pytest.param({"matchers": [{"name": "group", "value": "a", "isRegex": "false"}], "duration": "1h"},
                 "matchers[0]", id="isRegex not a bool"),
    pytest.param({"matchers": [{"name": "group", "value": ["a"]}], "duration": "1h"}, "matchers[0]",
                 id="value not a string"),
    pytest.param({"matchers": 'group="a"', "duration": "1h"}, "matchers", id="matchers not a list"),
    pytest.param({"matchers": ['alertname=~".*"'], "duration": "1h"}, "mute everything", id="mutes everything"),
    pytest.param({"duration": "1h", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "comment", id="comment too long"),
    pytest.param({"duration": "1h", "created_by": {"name": "ops"}}, "createdBy", id="createdBy not a string"),
    pytest.param({"duration": "1h", "silence_id": "x" * 65}, "id", id="id too long"),
]


@pytest.mark.parametrize("kwargs,key", BAD)
def test_bad_silence_is_refused_naming_the_key_and_nothing_is_stored(store, kwargs, key):
    sm = SilenceManager(store)
    kwargs = {"matchers": GOOD, **kwargs}
    with pytest.raises(SilenceError, match=key.replace("[", r"\[").replace("]", r"\]")):
        sm.create(kwargs.pop("matchers"), now=NOW, **kwargs)
    assert store.silence_rows() == []
    assert sm.list(NOW) == []


def test_limits_themselves_are_accepted(store):
    sm = SilenceManager(store)
    s = sm.create([f'group="g{i}"' for i in range(MAX_MATCHERS)], starts_at=NOW + MAX_SILENCE_SECONDS,
                  duration=MAX_SILENCE_SECONDS, comment="x" * MAX_COMMENT_CHARS, now=NOW)
    assert s.ends_at == NOW + 2 * MAX_SILENCE_SECONDS
    assert [x.id for x in sm.list(NOW)] == [s.id]
    json.dumps(s.to_dict(NOW), allow_nan=False)


def test_unknown_id_is_not_found_and_nothing_is_stored(store):
    sm = SilenceManager(store)
    with pytest.raises(SilenceNotFound):
        sm.create(GOOD, duration="1h", now=NOW, silence_id="no-such-silence")
    assert store.silence_rows() == []
    # an empty id is a new silence, as in Alertmanager
    assert sm.create(GOOD, duration="1h", now=NOW, silence_id="").id


def _insert_raw(path, **overrides):
    row = {"id": "raw", "matchers": json.dumps([{"name": "alertname", "op": "=~", "value": ".+"}]),
           "starts_at": NOW - 60, "ends_at": NOW + 3600, "created_by": "old version", "comment": "",
           "created_at": NOW - 60, "updated_at": NOW - 60, **overrides}
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment, created_at,"
                     " updated_at) VALUES (:id, :matchers, :starts_at, :ends_at, :created_by, :comment,"
                     " :created_at, :updated_at)", row)


@pytest.mark.parametrize("overrides", [
    pytest.param({"ends_at": 1e297}, id="endsAt 1e300 ms as saved by older versions"),
    pytest.param({"ends_at": math.inf}, id="endsAt inf"),
    pytest.param({"starts_at": "soon"}, id="text in a time column"),
    pytest.param({"matchers": "{not json"}, id="matchers not JSON"),
    pytest.param({"matchers": json.dumps([{"name": "alertname", "op": "=~", "value": "(("}])}, id="bad regex"),
    pytest.param({"matchers": "[]"}, id="no matchers"),
])
def test_unreadable_stored_row_is_skipped_with_one_warning(tmp_path, caplog, overrides):
    path = tmp_path / "old.db"
    store = StateStore(path)
    sm = SilenceManager(store)
    good = sm.create(GOOD, duration="1h", now=NOW)
    _insert_raw(path, id="bad-row", **overrides)
    caplog.set_level(logging.WARNING, logger="alerts.silences")
    for _ in range(3):
        assert [s.id for s in sm.list(NOW)] == [good.id]
        assert [s.id for s in sm.active(NOW)] == [good.id]  # the bad row silences nothing
    warnings = [r for r in caplog.records if r.name == "alerts.silences"]
    assert len(warnings) == 1 and "'bad-row'" in warnings[0].getMessage()
    with pytest.raises(SilenceNotFound):
        sm.expire("bad-row", now=NOW)
    store.close()
    # after a restart (a new process): still listed without the bad row, warned once again
    caplog.clear()
    reopened = StateStore(path)
    assert [s.id for s in SilenceManager(reopened).list(NOW)] == [good.id]
    assert len([r for r in caplog.records if r.name == "alerts.silences"]) == 1
    reopened.close()


def test_a_readable_row_from_an_older_version_still_counts(tmp_path):
    """Only rows that cannot be served are skipped; the limits apply to new silences."""
    path = tmp_path / "old.db"
    StateStore(path).close()
    _insert_raw(path, matchers=json.dumps([{"name": "group", "op": "=", "value": "orders"}]),
                ends_at=NOW + 3 * MAX_SILENCE_SECONDS)
    store = StateStore(path)
    (s,) = SilenceManager(store).active(NOW)
    assert s.id == "raw" and s.matches({"group": "orders"})
    store.close()
