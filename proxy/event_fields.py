"""Turn one coordination `Exchange` into the flat fields of an event.

The event log, the group-state model and the metrics all need the same few facts out of very
different message shapes (a group id lives at the top of JoinGroup, inside `groups[]` of
OffsetFetch v8+, under `key` of FindCoordinator...). Reading them in one place keeps the shapes
of eleven APIs and their versions out of the consumers, and keeps a malformed or unexpected body
from ever costing more than a missing field.

Consumer-protocol payloads (subscriptions, assignments) are decoded here too, because they are
what a person debugging a rebalance actually wants to read: who asked for which topics and who
got which partitions.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey, consumer_protocol
from kafka_chaos_proxy.faults.decision import SEQUENCE, ActionKind, Decision
from kafka_chaos_proxy.faults.realism import is_synthetic
from kafka_chaos_proxy.proxy.decoded import dict_items, int_or_none
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.fetch_sessions import FetchSample

JOIN_GROUP = ApiKey.JOIN_GROUP
SYNC_GROUP = ApiKey.SYNC_GROUP
HEARTBEAT = ApiKey.HEARTBEAT
LEAVE_GROUP = ApiKey.LEAVE_GROUP
OFFSET_COMMIT = ApiKey.OFFSET_COMMIT
OFFSET_FETCH = ApiKey.OFFSET_FETCH
FIND_COORDINATOR = ApiKey.FIND_COORDINATOR
DESCRIBE_GROUPS = ApiKey.DESCRIBE_GROUPS
LIST_GROUPS = ApiKey.LIST_GROUPS
CONSUMER_GROUP_HEARTBEAT = ApiKey.CONSUMER_GROUP_HEARTBEAT
SHARE_GROUP_HEARTBEAT = ApiKey.SHARE_GROUP_HEARTBEAT

# Every key an event carries, in the order they are written. Absent facts are null rather than
# missing so that every line of the log has the same shape.
EVENT_KEYS: tuple[str, ...] = (
    "seq",
    "time",
    "ts",
    "connection",
    "client_id",
    "principal",
    "client_host",
    "broker",
    "api",
    "api_key",
    "version",
    "correlation_id",
    "group",
    "member_id",
    "instance_id",
    "generation",
    "protocol_type",
    "protocols",
    "protocol",
    "leader",
    "subscription",
    "members",
    "assignments",
    "assignment",
    "offsets",
    "coordinator",
    "error",
    "error_code",
    "step",
    "latency_ms",
    "upstream_latency_ms",
    "outcome",
    "fault",
)

# A Fetch sample event (`run --fetch-events`, `fetch_event_fields`) carries these after the
# common keys: the connection's whole fetch-session set after the request, the partitions the
# set could not hold (over its bound), the Fetch requests the event covers, and the session.
FETCH_EVENT_KEYS: tuple[str, ...] = (
    "partitions", "partitions_dropped", "fetches", "session_id", "session_epoch")
#: The outcome of a sample event: a request seen on its way, not an exchange that ended.
OBSERVED = "observed"

TopicPartitions = dict[str, list[int]]

_log = structlog.get_logger(__name__)


api_name = codec.api_label
error_name = codec.error_label


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")


def _str(value: Any) -> str | None:
    """Empty strings mean "none" in most group fields (a first JoinGroup's member id)."""
    if value is None or value == "":
        return None
    return str(value)


def first_error(body: Mapping[str, Any] | None) -> int | None:
    """The top-level error code if non-zero, else the first non-zero one nested in arrays.

    OffsetCommit only has per-partition codes, LeaveGroup v3+ has per-member ones, batched
    FindCoordinator per-key ones: the first non-zero one is what explains the response.
    """
    if not body:
        return None
    top = int_or_none(body.get("error_code"))
    if top:
        return top
    queue: deque[Any] = deque(v for v in body.values() if isinstance(v, list))
    budget = 10_000  # bodies come off the wire; never walk an unbounded structure
    while queue and budget > 0:
        budget -= 1
        item = queue.popleft()
        if isinstance(item, list):
            queue.extend(item)
        elif isinstance(item, Mapping):
            code = int_or_none(item.get("error_code"))
            if code:
                return code
            queue.extend(v for v in item.values() if isinstance(v, list))
    return 0 if top == 0 else None


def all_errors(body: Mapping[str, Any] | None) -> set[int]:
    """Every distinct non-zero error code in a response, for the broker-error counters."""
    found: set[int] = set()
    if not body:
        return found
    stack: list[Any] = [body]
    budget = 10_000
    while stack and budget > 0:
        budget -= 1
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            code = int_or_none(item.get("error_code"))
            if code:
                found.add(code)
            stack.extend(v for v in item.values() if isinstance(v, list))
    return found


def subscription_topics(metadata: Any) -> list[str] | None:
    """Topics of a consumer-protocol subscription, or None if it is not one."""
    if not isinstance(metadata, bytes | bytearray | memoryview) or len(metadata) == 0:
        return None
    try:
        topics = consumer_protocol.decode_subscription(metadata).get("topics")
    except Exception:  # another protocol type's metadata, or garbage: not ours to judge
        return None
    return [str(t) for t in topics] if isinstance(topics, list) else None


def assignment_of(payload: Any) -> TopicPartitions | None:
    """Partitions of a consumer-protocol assignment; {} for the empty payload."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        return None
    if len(payload) == 0:
        return {}
    try:
        parts = consumer_protocol.assignment_partitions(payload)
    except Exception:
        return None
    return {str(topic): sorted(int(p) for p in ps) for topic, ps in parts.items()}


def _topic_key(topic: Mapping[str, Any]) -> str:
    """KIP-848 assignments name topics by id; ids print as their canonical UUID text."""
    for key in ("name", "topic", "topic_name"):
        if _str(topic.get(key)):
            return str(topic[key])
    topic_id = topic.get("topic_id")
    if isinstance(topic_id, uuid.UUID):
        return str(topic_id)
    if isinstance(topic_id, bytes | bytearray) and len(topic_id) == 16:
        return str(uuid.UUID(bytes=bytes(topic_id)))
    return str(topic_id)


def kip848_assignment(topic_partitions: Any) -> TopicPartitions:
    out: TopicPartitions = {}
    for topic in dict_items(topic_partitions):
        parts = topic.get("partitions")
        out[_topic_key(topic)] = sorted(int(p) for p in parts) if isinstance(parts, list) else []
    return out


def _offsets(
    topics: Iterable[Mapping[str, Any]], with_offsets: bool
) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for topic in topics:
        name = _topic_key(topic)
        per_partition = out.setdefault(name, {})
        for part in dict_items(topic.get("partitions")):
            index = int_or_none(part.get("partition_index"))
            if index is None:
                continue
            entry = per_partition.setdefault(str(index), {"offset": None, "error": None})
            if with_offsets and int_or_none(part.get("committed_offset")) is not None:
                entry["offset"] = part["committed_offset"]
            code = int_or_none(part.get("error_code"))
            if code:
                entry["error"] = error_name(code)
        for index in topic.get("partition_indexes") or []:
            per_partition.setdefault(str(index), {"offset": None, "error": None})
    return out


def _merge_offsets(
    request: dict[str, dict[str, dict[str, Any]]], response: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, dict[str, dict[str, Any]]]:
    merged = {topic: {p: dict(v) for p, v in parts.items()} for topic, parts in request.items()}
    for topic, parts in response.items():
        into = merged.setdefault(topic, {})
        for index, value in parts.items():
            entry = into.setdefault(index, {"offset": None, "error": None})
            if value["offset"] is not None:
                entry["offset"] = value["offset"]
            if value["error"] is not None:
                entry["error"] = value["error"]
    return merged


def _join_group(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    ev["group"] = _str(req.get("group_id"))
    ev["member_id"] = _str(resp.get("member_id")) or _str(req.get("member_id"))
    ev["instance_id"] = _str(req.get("group_instance_id"))
    protocol_type = _str(resp.get("protocol_type")) or _str(req.get("protocol_type"))
    ev["protocol_type"] = protocol_type
    protocols = dict_items(req.get("protocols"))
    ev["protocols"] = [str(p.get("name")) for p in protocols] or None
    is_consumer = protocol_type in (None, "consumer")
    if is_consumer:
        for proto in protocols:
            topics = subscription_topics(proto.get("metadata"))
            if topics is not None:
                ev["subscription"] = topics
                break
    if resp:
        generation = int_or_none(resp.get("generation_id"))
        ev["generation"] = generation if generation is not None and generation >= 0 else None
        ev["protocol"] = _str(resp.get("protocol_name"))
        ev["leader"] = _str(resp.get("leader"))
        members = [
            {
                "member_id": _str(m.get("member_id")),
                "instance_id": _str(m.get("group_instance_id")),
                "subscription": subscription_topics(m.get("metadata")) if is_consumer else None,
            }
            for m in dict_items(resp.get("members"))
        ]
        ev["members"] = members or None


def _sync_group(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    ev["group"] = _str(req.get("group_id"))
    ev["member_id"] = _str(req.get("member_id"))
    ev["instance_id"] = _str(req.get("group_instance_id"))
    ev["generation"] = int_or_none(req.get("generation_id"))
    ev["protocol_type"] = _str(req.get("protocol_type")) or _str(resp.get("protocol_type"))
    ev["protocol"] = _str(req.get("protocol_name")) or _str(resp.get("protocol_name"))
    if ev["protocol_type"] not in (None, "consumer"):
        return
    assignments: dict[str, TopicPartitions] = {}
    for entry in dict_items(req.get("assignments")):
        member = _str(entry.get("member_id"))
        parts = assignment_of(entry.get("assignment"))
        if member is not None and parts is not None:
            assignments[member] = parts
    ev["assignments"] = assignments or None
    if resp and not int_or_none(resp.get("error_code")):
        ev["assignment"] = assignment_of(resp.get("assignment"))


def _member_request(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    """Heartbeat: the fields every classic member request shares."""
    ev["group"] = _str(req.get("group_id"))
    ev["member_id"] = _str(req.get("member_id"))
    ev["instance_id"] = _str(req.get("group_instance_id"))
    ev["generation"] = int_or_none(req.get("generation_id"))


def _leave_group(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    ev["group"] = _str(req.get("group_id"))
    members = [
        {"member_id": _str(m.get("member_id")), "instance_id": _str(m.get("group_instance_id"))}
        for m in dict_items(req.get("members"))
    ]
    if members:
        ev["members"] = members
        ev["member_id"] = members[0]["member_id"]
        ev["instance_id"] = members[0]["instance_id"]
    else:
        ev["member_id"] = _str(req.get("member_id"))


def _offset_commit(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    ev["group"] = _str(req.get("group_id"))
    ev["member_id"] = _str(req.get("member_id"))
    ev["instance_id"] = _str(req.get("group_instance_id"))
    generation = req.get("generation_id_or_member_epoch", req.get("generation_id"))
    ev["generation"] = int_or_none(generation)
    offsets = _merge_offsets(
        _offsets(dict_items(req.get("topics")), with_offsets=True),
        _offsets(dict_items(resp.get("topics")), with_offsets=False),
    )
    ev["offsets"] = offsets or None


def _offset_fetch(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    groups = dict_items(req.get("groups"))
    if groups:  # v8+: batched by group; the event describes the first
        ev["group"] = _str(groups[0].get("group_id"))
        ev["member_id"] = _str(groups[0].get("member_id"))
        ev["generation"] = int_or_none(groups[0].get("member_epoch"))
        req_topics = dict_items(groups[0].get("topics"))
        resp_groups = dict_items(resp.get("groups"))
        resp_topics = dict_items(resp_groups[0].get("topics")) if resp_groups else []
    else:
        ev["group"] = _str(req.get("group_id"))
        req_topics = dict_items(req.get("topics"))
        resp_topics = dict_items(resp.get("topics"))
    offsets = _merge_offsets(
        _offsets(req_topics, with_offsets=False), _offsets(resp_topics, with_offsets=True)
    )
    ev["offsets"] = offsets or None


def _find_coordinator(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    if int_or_none(req.get("key_type")) not in (None, 0):  # transaction coordinators are not groups
        return
    keys = req.get("coordinator_keys")
    ev["group"] = _str(keys[0]) if isinstance(keys, list) and keys else _str(req.get("key"))
    coordinators = dict_items(resp.get("coordinators"))
    node = coordinators[0].get("node_id") if coordinators else resp.get("node_id")
    node = int_or_none(node)
    ev["coordinator"] = node if node is not None and node >= 0 else None


def _describe_groups(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    groups = req.get("groups")
    if isinstance(groups, list) and len(groups) == 1:
        ev["group"] = _str(groups[0])


def _kip848_heartbeat(req: Mapping[str, Any], resp: Mapping[str, Any], ev: dict[str, Any]) -> None:
    ev["group"] = _str(req.get("group_id"))
    ev["member_id"] = _str(resp.get("member_id")) or _str(req.get("member_id"))
    ev["instance_id"] = _str(req.get("instance_id"))
    ev["protocol_type"] = "consumer" if ev["api_key"] == CONSUMER_GROUP_HEARTBEAT else "share"
    ev["protocol"] = _str(req.get("server_assignor"))
    topics = req.get("subscribed_topic_names")
    if isinstance(topics, list):
        ev["subscription"] = [str(t) for t in topics]
    epoch = int_or_none(req.get("member_epoch"))
    answered = int_or_none(resp.get("member_epoch")) if resp else None
    if resp and not int_or_none(resp.get("error_code")) and answered is not None:
        epoch = int_or_none(resp.get("member_epoch"))
        assignment = resp.get("assignment")
        if isinstance(assignment, Mapping):
            ev["assignment"] = kip848_assignment(assignment.get("topic_partitions"))
    ev["generation"] = epoch


_Extractor = Callable[[Mapping[str, Any], Mapping[str, Any], dict[str, Any]], None]
_EXTRACTORS: dict[int, _Extractor] = {
    JOIN_GROUP: _join_group,
    SYNC_GROUP: _sync_group,
    HEARTBEAT: _member_request,
    LEAVE_GROUP: _leave_group,
    OFFSET_COMMIT: _offset_commit,
    OFFSET_FETCH: _offset_fetch,
    FIND_COORDINATOR: _find_coordinator,
    DESCRIBE_GROUPS: _describe_groups,
    CONSUMER_GROUP_HEARTBEAT: _kip848_heartbeat,
    SHARE_GROUP_HEARTBEAT: _kip848_heartbeat,
}


def fault_of(exchange: Exchange) -> dict[str, Any] | None:
    decision = exchange.decision
    if not decision.is_fault:
        return None
    if decision.action == SEQUENCE:
        # Rules with `chain`: one fault per rule, in the order they acted.
        stages = [_fault_fields(stage, exchange) for stage in decision.plan]
        merged: dict[str, Any] = {"rule": decision.rule_id, "action": "sequence",
                                  "rules": [stage["rule"] for stage in stages],
                                  "stages": stages}
        errors = [stage["error"] for stage in stages if "error" in stage]
        if errors:
            merged["error"] = errors[-1]
        if any(stage.get("synthetic") for stage in stages):
            merged["synthetic"] = True
        return merged
    return _fault_fields(decision, exchange)


def _fault_fields(decision: Decision, exchange: Exchange) -> dict[str, Any]:
    fault: dict[str, Any] = {"rule": decision.rule_id, "action": str(decision.action)}
    if decision.error_code is not None:
        fault["error"] = error_name(decision.error_code)
        # An error no real broker sends on this API and version: say so on every event.
        fault["synthetic"] = is_synthetic(api_name(exchange.api_key), exchange.api_version,
                                          decision.error_code)
        if getattr(decision.plan, "broker_consistent", False):
            fault["broker_consistent"] = True  # the broker was made to agree first
    if decision.action is ActionKind.DELAY:
        fault["delay_ms"] = round(decision.delay_s * 1000, 3)
        fault["side"] = str(decision.side)
    if decision.action is ActionKind.CLOSE:
        fault["close"] = f"{decision.close_when}/{decision.close_mode}"
    if decision.action == "hold":
        fault["side"] = str(decision.side)
    return fault


# The observers of one exchange are called one after the other, and each wants these fields:
# remember the last exchange's so they are built once. Treat the result as read-only.
_last: tuple[Exchange | None, dict[str, Any]] = (None, {})


def event_fields(exchange: Exchange) -> dict[str, Any]:
    """All event keys but `seq`, from one exchange. Never raises on odd bodies."""
    global _last
    if _last[0] is exchange:
        return _last[1]
    ev = _build(exchange)
    _last = (exchange, ev)
    return ev


def fetch_event_fields(sample: FetchSample) -> dict[str, Any]:
    """A Fetch sample event (`proxy.fetch_sessions`): the common keys (null where a sample
    has no such fact: no group, no member, no answer, so no latency or error either) and
    FETCH_EVENT_KEYS. Its `outcome` is "observed": the request was seen arriving; what the
    broker answered is not part of it."""
    ev: dict[str, Any] = dict.fromkeys(EVENT_KEYS)
    ev.update(
        time=iso_time(sample.at),
        ts=round(sample.at, 6),
        connection=sample.connection_id,
        client_id=sample.client_id,
        client_host=sample.client_host,
        broker=sample.broker_node,
        api=api_name(ApiKey.FETCH),
        api_key=int(ApiKey.FETCH),
        version=sample.api_version,
        correlation_id=sample.correlation_id,
        outcome=OBSERVED,
        partitions=sample.partitions,
        partitions_dropped=sample.dropped,
        fetches=sample.fetches,
        session_id=sample.session_id,
        session_epoch=sample.session_epoch,
    )
    return ev


def _build(exchange: Exchange) -> dict[str, Any]:
    ev: dict[str, Any] = dict.fromkeys(EVENT_KEYS)
    ev.update(
        time=iso_time(exchange.started_at),
        ts=round(exchange.started_at, 6),
        connection=exchange.connection_id,
        client_id=exchange.client_id,
        principal=exchange.principal,
        client_host=exchange.client_host,
        broker=exchange.broker_node,
        api=api_name(exchange.api_key),
        api_key=exchange.api_key,
        version=exchange.api_version,
        correlation_id=exchange.correlation_id,
        latency_ms=round(exchange.latency_s * 1000, 3),
        upstream_latency_ms=(
            None
            if exchange.upstream_latency_s is None
            else round(exchange.upstream_latency_s * 1000, 3)
        ),
        outcome=exchange.outcome,
        fault=fault_of(exchange),
    )
    req = exchange.request_body or {}
    resp = exchange.response_body or {}
    extractor = _EXTRACTORS.get(exchange.api_key)
    if extractor is not None:
        try:
            extractor(req, resp, ev)
        except Exception:  # a body shape we did not foresee: keep the event with what we have
            _log.warning("event fields unreadable", api=ev["api"], exc_info=True)
    code = first_error(exchange.response_body)
    ev["error_code"] = code
    ev["error"] = error_name(code) if code else None
    if code == 79 and exchange.api_key == JOIN_GROUP:  # MEMBER_ID_REQUIRED: KIP-394's first
        ev["step"] = "member_id_required"  # join step; `error` stays what the broker sent
    return ev
