"""What the pages and the API show beyond lag (issue 15), Dash-free: a group's coordinator,
protocol and assignor, who owns each partition, its lag against retention (headroom, records
lost), its recent commits from the history, and a cluster's end-to-end probe."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from collectors.kafka.ownership import owner_fields, partition_owners, raw_group
from collectors.models import ClusterState, GroupLag, ProbeStats, RetentionRisk
from monitor.web.context import WebContext
from monitor.web.jsonable import to_jsonable
from monitor.web.views import format as fmt

AT_RISK_SECONDS = 3600.0  # the default "falls off the log within 1 h" rule's threshold
COMMITS_PER_PARTITION = 5
COMMITS_SECONDS = 6 * 3600.0
_BASIS_TEXT = {
    "caught_up": "nothing unread", "unlimited": "no retention limit", "compacted": "compacted: does not apply",
    "unknown": "not known yet", "time": "by retention.ms", "size": "by retention.bytes",
}


# ------------------------------------------------------------------------------ retention


def group_risks(state: ClusterState | None, group: str | None) -> list[RetentionRisk]:
    return [r for r in (state.lag.retention if state is not None else ()) if r.group == group]


def worst_risk(risks: Iterable[RetentionRisk]) -> RetentionRisk | None:
    """Lost records first, then the least headroom; None when no risk has a headroom or a loss."""
    candidates = [r for r in risks if r.lost or r.headroom_seconds is not None]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (not r.lost, -r.lost, r.headroom_seconds if r.headroom_seconds is not None
                                          else math.inf))


def risk_level(r: RetentionRisk | None) -> str:
    if r is None:
        return "ok"
    if r.lost:
        return "err"
    h = r.headroom_seconds
    return "warn" if h is not None and h < AT_RISK_SECONDS else "ok"


def headroom_text(headroom: float | None, basis: str, lost: int = 0, upper_bound: bool = False) -> str:
    """"lost 1.2k records", "≤ 2h 5m (by retention.ms)", "∞ (nothing unread)", "n/a (compacted...)"."""
    if lost:
        return f"lost {fmt.count(lost)} records"
    if headroom is None:
        return f"{fmt.MISSING} ({_BASIS_TEXT.get(basis, basis)})"
    if math.isinf(headroom):
        return f"∞ ({_BASIS_TEXT.get(basis, basis)})"
    return ("≤ " if upper_bound else "") + f"{fmt.duration(headroom)} ({_BASIS_TEXT.get(basis, basis)})"


def risk_text(r: RetentionRisk | None) -> str:
    if r is None:
        return fmt.MISSING
    return headroom_text(r.headroom_seconds, r.basis, r.lost, r.upper_bound)


def partition_retention(risks: Iterable[RetentionRisk]) -> dict[tuple[str, int], tuple[str, float | None]]:
    """(topic, partition) -> (text, headroom for sorting) of the lagging partitions."""
    out = {}
    for r in risks:
        for p in r.partitions:
            out[(p.topic, p.partition)] = (headroom_text(p.headroom_seconds, p.basis, p.lost, p.upper_bound),
                                           -1.0 if p.lost else p.headroom_seconds)
    return out


def risk_json(r: RetentionRisk) -> dict:
    """A risk in the API: `headroom_seconds` null when infinite or not applicable (`basis` says)."""
    return to_jsonable(r)


# ------------------------------------------------------------------------------ the group header


@dataclass
class GroupProtocol:
    coordinator: int | None
    protocol_type: str | None
    assignor: str | None


def group_protocol(state: ClusterState | None, group: str | None) -> GroupProtocol:
    g = raw_group(state.raw if state is not None else None, group)
    if g is None:
        return GroupProtocol(None, None, None)
    return GroupProtocol(g.coordinator, g.protocol_type, g.assignor)


def protocol_text(p: GroupProtocol) -> str:
    parts = [p.protocol_type or "protocol unknown"]
    if p.assignor:
        parts.append(f"assignor {p.assignor}")
    return " · ".join(parts)


def owners(state: ClusterState | None, group: str | None) -> dict[tuple[str, int], dict]:
    """(topic, partition) -> owner_member_id, owner_client_id, owner_host."""
    g = raw_group(state.raw if state is not None else None, group)
    return {key: owner_fields(member) for key, member in partition_owners(g).items()}


def group_json(state: ClusterState, g: GroupLag) -> dict:
    """A group in the API: its lag, its coordinator, protocol and assignor, per partition its
    owner and retention headroom, and per topic its lag against retention."""
    out = to_jsonable(g)
    protocol = group_protocol(state, g.group)
    out.update(coordinator=protocol.coordinator, protocol_type=protocol.protocol_type, assignor=protocol.assignor)
    owned = owners(state, g.group)
    risks = group_risks(state, g.group)
    detail = {(p.topic, p.partition): p for r in risks for p in r.partitions}
    for row, p in zip(out["partitions"], g.partitions):
        row.update(owned.get((p.topic, p.partition)) or owner_fields(None))
        r = detail.get((p.topic, p.partition))
        row["records_lost"] = r.lost if r is not None else 0
        row["retention_headroom_seconds"] = to_jsonable(r.headroom_seconds) if r is not None else None
    out["retention"] = [risk_json(r) for r in risks]
    return out


def group_summary_json(state: ClusterState, g: GroupLag) -> dict:
    """The groups list's extra columns: the worst risk of the group."""
    worst = worst_risk(group_risks(state, g.group))
    return {"records_lost": sum(r.lost for r in group_risks(state, g.group)),
            "retention_headroom_seconds": to_jsonable(worst.headroom_seconds) if worst else None,
            "retention_basis": worst.basis if worst else None}


# ------------------------------------------------------------------------------ commits


def commit_rows(ctx: WebContext, cluster: str | None, group: str | None, at: float,
                limit: int = COMMITS_PER_PARTITION) -> list[dict]:
    """The last commits per partition as the history saw them, newest first."""
    if ctx.history is None or cluster is None or group is None:
        return []
    try:
        commits = ctx.history.commit_history(cluster, group, at - COMMITS_SECONDS, at, limit=limit)
    except Exception:  # history closed or unreadable: the page still renders
        return []
    rows = []
    for c in sorted(commits, key=lambda c: (-c["at"], c["topic"], c["partition"])):
        when = fmt.timestamp(c["at"])
        rows.append({
            "id": f'{c["topic"]}|{c["partition"]}|{c["at"]}', "topic": c["topic"], "partition": c["partition"],
            "offset": fmt.integer(c["offset"]),
            "committed": (f"{fmt.timestamp(c['after'])} – {when}" if c["after"] is not None else f"at or before {when}"),
            "age": fmt.age(c["at"], at), "_at": c["at"],
        })
    return rows


# ------------------------------------------------------------------------------ the probe


def probe_summary(probe: ProbeStats | None) -> tuple[str, str, str] | None:
    """(value, sub text, level) of a cluster's probe; None without one."""
    if probe is None:
        return None
    if probe.rounds_total == 0:
        return "starting", f"topic {probe.topic}", "unknown"
    mean = probe.roundtrip.sum / probe.roundtrip.count if probe.roundtrip.count else None
    latency = f"mean round trip {fmt.duration(mean)}" if mean is not None else "no record back yet"
    if probe.up:
        return "OK", f"{latency} · {probe.partitions} partition(s)", "ok"
    return "FAILING", probe.error or "last round failed", "err"
