"""Who owns a group's partitions: the member, client id and host each partition is assigned to,
from the group's description (Burrow's owner view). Pure."""
from __future__ import annotations

from collectors.models import ConsumerGroup, GroupMember, KafkaClusterSnapshot


def partition_owners(group: ConsumerGroup | None) -> dict[tuple[str, int], GroupMember]:
    """(topic, partition) -> the member it is assigned to; the first member wins should two
    claim one (a rebalance in flight)."""
    owners: dict[tuple[str, int], GroupMember] = {}
    for member in (group.members if group is not None else ()):
        for topic, partition in member.assignment:
            owners.setdefault((topic, partition), member)
    return owners


def raw_group(raw: KafkaClusterSnapshot | None, name: str | None) -> ConsumerGroup | None:
    """The group `name` as the collector saw it (members, coordinator, protocol, assignor)."""
    for g in (raw.groups if raw is not None else ()):
        if g.name == name:
            return g
    return None


def owner_fields(member: GroupMember | None) -> dict[str, str | None]:
    """The owner of a partition as the API and the pages show it."""
    if member is None:
        return {"owner_member_id": None, "owner_client_id": None, "owner_host": None}
    return {"owner_member_id": member.member_id, "owner_client_id": member.client_id, "owner_host": member.host}
