"""`place_apps`: which app each location found in a cycle is, and the id it is shown under.
The table is the rules' specification (see the rules in `place_apps`' docstring)."""
from __future__ import annotations

import pytest

from collectors.spark.discovery import AppLocation, app_fingerprint, place_apps
from collectors.spark.models import SparkApp

ID = "local-1796637692114"


def loc(via: str, url: str, name: str = "job", start: float | None = 1.0, app_id: str = ID,
        target: str = "t") -> AppLocation:
    app = SparkApp(id=app_id, name=name, ui_url=url, attempt=None, start_time=start,
                   end_time=None, spark_version="4.2.0", completed=False, fetched_at=0.0,
                   discovered_via=via)
    return AppLocation(app=app, target=target, api_root=f"{url}/api/v1/applications/{app_id}",
                       ui_root=url, metrics_root=None if via == "history" else url, found_at=url)


A = loc("ui", "http://h:4040", name="structured", start=1.0)
A_AGAIN = loc("port-scan", "http://127.0.0.1:4040", name="structured", start=1.0)
B = loc("ui", "http://h:4041", name="dstream", start=2.0)
B_SAME_NAME = loc("ui", "http://h:4041", name="structured", start=2.0)
A_MASTER = loc("master", "http://h:4040", name="structured", start=1.0)
A_HISTORY = loc("history", "http://shs:18080/history/x", name="structured", start=1.0)
OTHER = loc("ui", "http://h:4042", app_id="app-20261125115234-0000")


def shown(placed: dict[str, AppLocation]) -> dict[str, str]:
    """key -> the URL the app is read from."""
    assert all(key == p.app.id for key, p in placed.items())
    return {key: p.found_at for key, p in placed.items()}


@pytest.mark.parametrize("rule, found, held, expected", [
    ("Rule 1 - one app found by a driver UI and the History Server is read from its UI",
     [A_HISTORY, A], {}, {ID: A.found_at}),
    ("Rule 1 - one app found by the master and its UI is read from its UI",
     [A_MASTER, A], {}, {ID: A.found_at}),
    ("Rule 1 - one driver reached by two URLs (same name and start) is one app, first found",
     [A, A_AGAIN], {}, {ID: A.found_at}),
    ("Rule 1 - apps with different ids are apart",
     [A, OTHER], {}, {ID: A.found_at, OTHER.app.id: OTHER.found_at}),
    ("Rule 2 - two drivers report one id: the one started first keeps the id",
     [B, A], {}, {ID: A.found_at, f"{ID}@h:4041": B.found_at}),
    ("Rule 2 - one name, two start times: still two apps",
     [A, B_SAME_NAME], {}, {ID: A.found_at, f"{ID}@h:4041": B_SAME_NAME.found_at}),
    ("Rule 2 - the one shown under the bare id last cycle keeps it",
     [A, B], {ID: app_fingerprint(B.app)}, {ID: B.found_at, f"{ID}@h:4040": A.found_at}),
    ("Rule 3 - an app shown as <id>@<host:port> keeps its key once it is alone",
     [B], {ID: app_fingerprint(A.app), f"{ID}@h:4041": app_fingerprint(B.app)},
     {f"{ID}@h:4041": B.found_at}),
    ("Rule 3 - ... and beside the other app again",
     [A, B], {f"{ID}@h:4041": app_fingerprint(B.app)},
     {ID: A.found_at, f"{ID}@h:4041": B.found_at}),
    ("Rule 1 - a driver that never shared its id takes it over from one gone (a new attempt)",
     [B], {ID: app_fingerprint(A.app)}, {ID: B.found_at}),
    ("Rule 4 - master and History Server locations of a split id are dropped",
     [A_HISTORY, A_MASTER, A, B], {}, {ID: A.found_at, f"{ID}@h:4041": B.found_at}),
    ("Rule 1 - an app found only by the master is kept",
     [A_MASTER], {}, {ID: A_MASTER.found_at}),
])
def test_place_apps(rule, found, held, expected):
    assert shown(place_apps(found, held)) == expected, rule


def test_a_split_app_remembers_spark_s_id():
    placed = place_apps([A, B])
    assert (placed[ID].split_from, placed[f"{ID}@h:4041"].split_from) == (None, ID)
    # it is read where Spark serves it: under Spark's own id
    assert placed[f"{ID}@h:4041"].api_root == f"http://h:4041/api/v1/applications/{ID}"
