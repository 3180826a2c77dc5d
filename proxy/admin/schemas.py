"""Response models of the admin API: they are what /openapi.json promises to clients."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kafka_chaos_proxy.faults.model import Action, Dosage, Match
from kafka_chaos_proxy.faults.triggers import When

TopicPartitions = dict[str, list[int]]


class Health(BaseModel):
    status: str = "ok"


class Cleared(BaseModel):
    removed: int = Field(description="How many rules were deleted.")


class ApiError(BaseModel):
    detail: str


class OffsetEntry(BaseModel):
    offset: int | None = None
    error: str | None = None


class EventMember(BaseModel):
    model_config = ConfigDict(extra="allow")

    member_id: str | None = None
    instance_id: str | None = None
    subscription: list[str] | None = None


# What a map or list field of an event holds once the event log cut it from a large event: a
# note "<N bytes, truncated>", the field then named in the event's `truncated` (only fields of
# at least `proxy.events.MIN_CUT_BYTES` are ever cut, so numbers keep their type).
Cut = str


class Event(BaseModel):
    """One coordination request/response pair as the client experienced it; or (`run
    --fetch-events`) a Fetch sample: `api` Fetch, `outcome` observed, no group, and the
    connection's fetch session in `partitions`."""

    seq: int
    time: str = Field(description="ISO-8601 UTC time the request arrived.")
    ts: float = Field(description="The same instant as Unix seconds.")
    connection: int | None = None
    client_id: str | None = None
    principal: str | None = Field(
        None, description="Who the client authenticated as: the SASL user (PLAIN, SCRAM, an "
        "unsigned OAUTHBEARER token's sub) or the TLS client certificate's subject; null when "
        "the exchange does not reveal it.")
    client_host: str | None = None
    broker: int | None = None
    api: str
    api_key: int | None = None
    version: int | None = None
    correlation_id: int | None = None
    group: str | None = None
    member_id: str | None = None
    instance_id: str | None = None
    generation: int | None = Field(None, description="Generation id, or KIP-848 member epoch.")
    protocol_type: str | None = None
    protocols: list[str] | Cut | None = Field(None, description="JoinGroup: protocols offered.")
    protocol: str | None = Field(None, description="Protocol (assignor) chosen.")
    leader: str | None = None
    subscription: list[str] | Cut | None = Field(None, description="Topics subscribed to.")
    members: list[EventMember] | Cut | None = None
    assignments: dict[str, TopicPartitions] | Cut | None = Field(
        None, description="SyncGroup leader: member -> topic -> partitions."
    )
    assignment: TopicPartitions | Cut | None = Field(
        None, description="This member's assignment as the response carried it."
    )
    offsets: dict[str, dict[str, OffsetEntry]] | Cut | None = Field(
        None, description="topic -> partition -> offset and per-partition error."
    )
    coordinator: int | None = None
    error: str | None = None
    error_code: int | None = None
    step: str | None = Field(
        None, description="A normal protocol step the error stands for (member_id_required).")
    truncated: dict[str, int] | None = Field(
        None, description="Fields cut from a large event, with their original size in bytes.")
    latency_ms: float | None = None
    upstream_latency_ms: float | None = None
    outcome: str | None = None
    fault: dict[str, Any] | None = Field(None, description="{rule, action, ...} if a fault hit.")
    # Fetch samples only (absent from coordination events). A string when the event log cut
    # the field from a very large event (see `truncated`).
    partitions: TopicPartitions | Cut | None = Field(
        None, description="Fetch: topic -> partitions the connection's fetch session covers "
        "after this request (topic_id:<uuid> for an id no Metadata answer named).")
    partitions_dropped: int | None = Field(
        None, description="Fetch: partitions not kept, over the per-connection bound.")
    fetches: int | None = Field(
        None, description="Fetch: requests on this connection since its previous Fetch event, "
        "this one included.")
    session_id: int | None = Field(None, description="Fetch: the KIP-227 session id sent.")
    session_epoch: int | None = Field(
        None, description="Fetch: the session epoch sent (0 or -1: a full request).")


class RebalanceInfo(BaseModel):
    generation: int | None = None
    started_at: str | None = None
    ended_at: str
    duration_ms: float | None = None


class GroupMember(BaseModel):
    member_id: str
    instance_id: str | None = None
    client_id: str | None = None
    client_host: str | None = None
    connection: int | None = None
    first_seen: str
    last_seen: str
    generation: int | None = None
    subscription: list[str] | None = None
    assignment: TopicPartitions | None = None
    last_api: str | None = None


class GroupSummary(BaseModel):
    group_id: str
    kind: str = Field(description="classic, consumer (KIP-848) or share.")
    state: str = Field(description="unknown, rebalancing, stable or empty.")
    broker_state: str | None = Field(
        None, description="The broker's name for it: EMPTY, PREPARING_REBALANCE, "
        "COMPLETING_REBALANCE, STABLE (RECONCILING for KIP-848 groups).")
    protocol_type: str | None = None
    protocol: str | None = None
    generation: int | None = None
    leader: str | None = None
    coordinator: int | None = None
    member_count: int
    rebalance_count: int
    rebalance_started_at: str | None = None
    last_rebalance: RebalanceInfo | None = None
    last_error: str | None = None
    last_seen: str


class GroupDetail(GroupSummary):
    members: list[GroupMember]
    assignment: dict[str, TopicPartitions] = Field(description="member -> topic -> partitions.")
    offsets: dict[str, dict[str, int]] = Field(
        description="Committed: topic -> partition -> offset."
    )


class RuleStats(BaseModel):
    matched: int = Field(description="Requests the rule matched while enabled.")
    injected: int = Field(description="Faults actually applied.")


class TriggerStats(BaseModel):
    armed: bool = Field(description="Armed now (a rule without when.after is from the start).")
    disarmed: bool = Field(description="Disarmed for good by when.until (until re-enabled).")
    trigger_events: int = Field(description="Events of when.after seen so far.")


class RuleOut(BaseModel):
    """A stored rule (its id always set) with its statistics; PUT accepts it back as is."""

    id: str
    description: str = ""
    enabled: bool = True
    match: Match
    action: Action
    dosage: Dosage
    when: When | None = None
    chain: bool = False
    stats: RuleStats
    trigger: TriggerStats | None = Field(
        None, description="Rules with when.after or when.until: their trigger's state.")
    warnings: list[str] = Field(
        default_factory=list, description="What a real broker would never do that this rule "
        "does (an error it never returns on that API): results resting on it are robustness "
        "findings, not races. See docs/broker-errors.md.")


class ConnectionInfo(BaseModel):
    """One client connection (the data plane's view; more keys may appear)."""

    model_config = ConfigDict(extra="allow")

    id: int
    client: str | None = Field(None, description="Client address host:port.")
    node_id: int | None = Field(None, description="Broker node behind it; -1 bootstrap.")
    broker: str | None = Field(None, description="Upstream broker address.")
    opened_at: float | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    requests: int | None = None
    pending_responses: int | None = None
    throttle_bytes_per_s: int | None = None
    paused: list[str] | None = None
    client_tls: bool | None = Field(None, description="The client side is TLS.")
    upstream_tls: bool | None = Field(None, description="The broker side is TLS.")
    principal: str | None = Field(None, description="Who the client authenticated as (SASL "
                                  "user, else TLS client certificate subject), if revealed.")


class BrokerInfo(BaseModel):
    """One broker and the proxy listener that stands in for it."""

    model_config = ConfigDict(extra="allow")

    node_id: int
    broker_host: str | None = None
    broker_port: int | None = None
    rack: str | None = None
    proxy_host: str | None = None
    proxy_port: int | None = None
    connections: int | None = None
