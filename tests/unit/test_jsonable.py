"""monitor.web.jsonable: the API's one conversion of snapshot values to JSON."""
import math

from collectors.models import CommittedOffset, PartitionLag, PartitionMetadata, Status, TimeLagMethod
from monitor.web.jsonable import to_jsonable


def test_per_partition_records_are_objects_with_every_field_in_order():
    lag = PartitionLag("g", "t", 3, 10, 15, 5, math.inf, TimeLagMethod.EXACT, None, Status.STALL, owner="c1")
    assert to_jsonable(lag) == {
        "group": "g", "topic": "t", "partition": 3, "committed_offset": 10, "end_offset": 15, "lag": 5,
        "time_lag_seconds": None, "time_lag_method": "exact", "consume_rate": None, "status": "STALL",
        "owner": "c1", "time_lag_lower_bound": False, "readable_lag": 5, "uncommitted": False,
    }
    assert list(to_jsonable(lag)) == list(PartitionLag._fields)
    assert to_jsonable(PartitionMetadata("t", 0, 1, (1, 2), (1,), 0, 9)) == {
        "topic": "t", "partition": 0, "leader": 1, "replicas": [1, 2], "isr": [1], "earliest_offset": 0,
        "latest_offset": 9, "stable_offset": None, "size_bytes": None}
    assert to_jsonable((CommittedOffset("t", 1, 4),)) == [{
        "topic": "t", "partition": 1, "offset": 4, "committed": True, "readable_lag": None,
        "readable_offset": None, "timestamp": None}]


def test_plain_tuples_stay_lists():
    assert to_jsonable(((1, "a"), (2, float("nan")))) == [[1, "a"], [2, None]]


def test_a_dataclass_without_the_fields_left_out():
    from tests.snapshot_builders import group_lag

    g = group_lag("c", "g", {("t", 0): (5, 12.0), ("t", 1): 3, ("u", 0): 1})
    row = to_jsonable(g, leave_out=("partitions",))
    assert "partitions" not in row and row["lag"] == 9 and row["topics"] == ["t", "u"]
    assert [(t["topic"], t["lag"], t["time_lag_seconds"], t["time_lag_method"]) for t in row["topic_lags"]] == [
        ("t", 8, 12.0, "exact"), ("u", 1, None, "none")]
    assert to_jsonable(g) == {**row, "partitions": to_jsonable(g.partitions)}
