"""Schema coverage and the api/error-code helpers built on it."""

from __future__ import annotations

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import schema


def test_all_kinds_of_spec_present() -> None:
    kinds = {s.kind for s in schema.MESSAGES.values()}
    assert kinds == {"request", "response", "header", "data"}
    for name in ("RequestHeader", "ResponseHeader", "ConsumerProtocolSubscription",
                 "ConsumerProtocolAssignment", "LeaderChangeMessage"):
        assert name in schema.MESSAGES
    requests = {s.api_key for s in schema.MESSAGES.values() if s.kind == "request"}
    responses = {s.api_key for s in schema.MESSAGES.values() if s.kind == "response"}
    assert requests == responses == set(codec.API_NAMES)


def test_api_names_and_lookup() -> None:
    assert codec.API_NAMES[11] == "JoinGroup"
    assert codec.API_NAMES[18] == "ApiVersions"
    for spelling in ("JoinGroup", "join_group", "JOIN_GROUP", "joingroup", "11", 11,
                     "JoinGroupRequest"):
        assert codec.api_key_of(spelling) == 11
    assert codec.api_key_of("ConsumerGroupHeartbeat") == 68
    with pytest.raises(ValueError, match="JoinGroup"):
        codec.api_key_of("JoinGroupz")
    with pytest.raises(codec.CodecError):
        codec.api_key_of(12345)


def test_supported_versions_and_flexibility() -> None:
    assert codec.supported_versions(11) == (0, 9)
    assert codec.is_supported(11, 9) and not codec.is_supported(11, 10)
    assert not codec.is_supported(4242, 0)
    assert codec.is_flexible(11, 6, codec.Direction.REQUEST)
    assert not codec.is_flexible(11, 5, "response")
    with pytest.raises(codec.UnknownApiError):
        codec.supported_versions(4242)


def test_stable_versions_drop_an_unstable_latest() -> None:
    assert codec.stable_versions(11) == codec.supported_versions(11)
    lo, hi = codec.supported_versions(68)  # ConsumerGroupHeartbeat: latest is unstable
    assert codec.stable_versions(68) == (lo, hi - 1)


def test_error_codes() -> None:
    assert codec.ERROR_CODES["UNKNOWN_MEMBER_ID"] == 25
    assert codec.error_name(27) == "REBALANCE_IN_PROGRESS"
    assert codec.error_name(0) == "NONE"
    assert codec.error_name(31337) == "UNKNOWN_ERROR_31337"
    for spelling in ("REBALANCE_IN_PROGRESS", "rebalance_in_progress", "RebalanceInProgress",
                     27, "27"):
        assert codec.error_code(spelling) == 27
    with pytest.raises(ValueError):
        codec.error_code("NOT_AN_ERROR")


def test_tagged_fields_and_defaults_are_recorded() -> None:
    fields = {f.name: f for f in schema.MESSAGES["ApiVersionsResponse"].fields}
    f = fields["finalized_features_epoch"]
    assert f.tag == 1 and f.tagged == (3, 0x7FFF) and f.default == "-1"
    header = {f.name: f for f in schema.MESSAGES["RequestHeader"].fields}
    assert header["client_id"].flexible == (0, -1)  # never compact
    assert schema.MESSAGES["JoinGroupRequest"].flexible == (6, 0x7FFF)
