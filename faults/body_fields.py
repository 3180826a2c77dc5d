"""Where each body field a rule can match lives in each API's request, and how to read it.

Body fields live in different places depending on the API and version (OffsetFetch v8+ batches
groups, LeaveGroup v3+ batches members, FindCoordinator v4+ batches keys). `BODY_FIELDS` is the
one table that says where. It has a module of its own because two modules need the same facts:
`faults.model` to tell a user which APIs carry a field, `faults.match` to read it from a decoded
request; neither has to import the other for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# A path into a decoded body: keys of nested dicts, "*" = every element of a list.
Path = tuple[str, ...]

# The logical fields a rule can match in a request body -> API name -> where the value lives.
# Field names are the codec's snake_case names of the Kafka message specs.
BODY_FIELDS: dict[str, dict[str, tuple[Path, ...]]] = {
    "group_id": {
        "JoinGroup": (("group_id",),),
        "SyncGroup": (("group_id",),),
        "Heartbeat": (("group_id",),),
        "LeaveGroup": (("group_id",),),
        "OffsetCommit": (("group_id",),),
        "OffsetFetch": (("group_id",), ("groups", "*", "group_id")),
        "OffsetDelete": (("group_id",),),
        "TxnOffsetCommit": (("group_id",),),
        "AddOffsetsToTxn": (("group_id",),),
        "DescribeGroups": (("groups", "*"),),
        "DeleteGroups": (("groups_names", "*"),),
        # FindCoordinator is special-cased below: its keys are group ids only for key_type 0.
        "FindCoordinator": (("key",), ("coordinator_keys", "*")),
        "ConsumerGroupHeartbeat": (("group_id",),),
        "ConsumerGroupDescribe": (("group_ids", "*"),),
        "ShareGroupHeartbeat": (("group_id",),),
        "ShareGroupDescribe": (("group_ids", "*"),),
        "ShareFetch": (("group_id",),),
        "ShareAcknowledge": (("group_id",),),
    },
    "member_id": {
        "JoinGroup": (("member_id",),),
        "SyncGroup": (("member_id",),),
        "Heartbeat": (("member_id",),),
        "LeaveGroup": (("member_id",), ("members", "*", "member_id")),
        "OffsetCommit": (("member_id",),),
        "OffsetFetch": (("groups", "*", "member_id"),),
        "TxnOffsetCommit": (("member_id",),),
        "ConsumerGroupHeartbeat": (("member_id",),),
        "ShareGroupHeartbeat": (("member_id",),),
        "ShareFetch": (("member_id",),),
        "ShareAcknowledge": (("member_id",),),
    },
    "group_instance_id": {
        "JoinGroup": (("group_instance_id",),),
        "SyncGroup": (("group_instance_id",),),
        "Heartbeat": (("group_instance_id",),),
        "LeaveGroup": (("members", "*", "group_instance_id"),),
        "OffsetCommit": (("group_instance_id",),),
        "TxnOffsetCommit": (("group_instance_id",),),
        "ConsumerGroupHeartbeat": (("instance_id",),),
    },
    "generation_id": {
        "SyncGroup": (("generation_id",),),
        "Heartbeat": (("generation_id",),),
        # Since KIP-848 the same field carries the member epoch for consumer-protocol groups.
        "OffsetCommit": (("generation_id_or_member_epoch",),),
        "TxnOffsetCommit": (("generation_id",),),
    },
    "member_epoch": {
        "ConsumerGroupHeartbeat": (("member_epoch",),),
        "ShareGroupHeartbeat": (("member_epoch",),),
        "OffsetCommit": (("generation_id_or_member_epoch",),),
        "OffsetFetch": (("groups", "*", "member_epoch"),),
    },
}

# FindCoordinator key types whose keys are consumer group ids (absent before v1 = group).
_GROUP_KEY_TYPE = 0


def apis_carrying(field_name: str) -> list[str]:
    """API names whose requests carry `field_name`, sorted for error messages."""
    return sorted(BODY_FIELDS[field_name])


def _walk(node: Any, path: Path) -> Iterator[Any]:
    """Every value at `path` in a decoded body; absent keys and null arrays yield nothing."""
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(node, list | tuple):
            for item in node:
                yield from _walk(item, rest)
        return
    if isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest)


def body_values(body: Mapping[str, Any], api_name: str, field_name: str) -> Iterator[Any]:
    """The values of one logical field in one request body (several for batched requests)."""
    paths = BODY_FIELDS[field_name].get(api_name, ())
    if api_name == "FindCoordinator" and body.get("key_type", _GROUP_KEY_TYPE) != _GROUP_KEY_TYPE:
        return
    for path in paths:
        yield from _walk(body, path)
