"""Bodies of any shape never cost more than missing fields: no exception from the event
builder or the group model, whatever the decoded dicts hold."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy.proxy.event_fields import EVENT_KEYS, event_fields
from kafka_chaos_proxy.proxy.exchange import Exchange
from kafka_chaos_proxy.proxy.groups import GroupStateModel
from kafka_chaos_proxy.proxy.roles import COORDINATION_API_KEYS

_KEYS = st.sampled_from(
    [
        "group_id",
        "member_id",
        "generation_id",
        "generation_id_or_member_epoch",
        "member_epoch",
        "error_code",
        "protocols",
        "members",
        "assignments",
        "assignment",
        "topics",
        "partitions",
        "partition_index",
        "committed_offset",
        "metadata",
        "groups",
        "key",
        "key_type",
        "coordinator_keys",
        "coordinators",
        "node_id",
        "topic_partitions",
        "topic_id",
        "subscribed_topic_names",
        "protocol_type",
        "leader",
        "name",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    st.text(max_size=8),
    st.binary(max_size=24),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)
_BODIES = st.one_of(st.none(), st.dictionaries(_KEYS, _VALUES, max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    api_key=st.sampled_from(sorted(COORDINATION_API_KEYS)),
    request=_BODIES,
    response=_BODIES,
)
def test_any_body_shape_is_survived(
    api_key: int, request: dict[str, Any] | None, response: dict[str, Any] | None
) -> None:
    exchange = Exchange(
        connection_id=1,
        client_host="h",
        broker_node=1,
        client_id=None,
        api_key=api_key,
        api_version=0,
        correlation_id=0,
        request_body=request,
        response_body=response,
        started_at=1_700_000_000.0,
        latency_s=0.001,
        upstream_latency_s=None,
    )
    ev = event_fields(exchange)
    assert set(ev) == set(EVENT_KEYS)
    GroupStateModel().observe(exchange)
