"""Matching: each field, globs vs regexes, batched bodies, and when the body is (not) decoded."""

from __future__ import annotations

from typing import Any

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.body_fields import BODY_FIELDS
from kafka_chaos_proxy.faults.match import CompiledMatch, compile_match
from kafka_chaos_proxy.faults.model import Match
from kafka_chaos_proxy.faults.names import api_keys
from tests.support.fault_fakes import FakeView

SYNC = codec.api_key_of("SyncGroup")
JOIN = codec.api_key_of("JoinGroup")
HEARTBEAT = codec.api_key_of("Heartbeat")
PRODUCE = codec.api_key_of("Produce")
FETCH = codec.api_key_of("Fetch")
OFFSET_FETCH = codec.api_key_of("OffsetFetch")
OFFSET_COMMIT = codec.api_key_of("OffsetCommit")
LEAVE = codec.api_key_of("LeaveGroup")
FIND = codec.api_key_of("FindCoordinator")
DESCRIBE = codec.api_key_of("DescribeGroups")
CGH = codec.api_key_of("ConsumerGroupHeartbeat")


def compiled(**fields: Any) -> CompiledMatch:
    return compile_match(Match.model_validate(fields), api_keys())


def test_empty_match_matches_everything_without_decoding() -> None:
    m = compiled()
    for key in (PRODUCE, FETCH, SYNC):
        view = FakeView(api_key=key)
        assert m.matches(view)
        assert view.body_calls == 0


def test_api_only_rule_never_decodes() -> None:
    m = compiled(apis=["Produce", "Fetch"])
    views = [FakeView(api_key=k, decoded={"group_id": "x"}) for k in (PRODUCE, FETCH, SYNC)]
    assert [m.matches(v) for v in views] == [True, True, False]
    assert all(v.body_calls == 0 for v in views)


def test_header_fields_never_decode() -> None:
    m = compiled(versions=[3], client_id="py-*", broker=2, connection=7)
    view = FakeView(api_key=PRODUCE, api_version=3, client_id="py-1", broker_node=2,
                    connection_id=7)  # fmt: skip
    assert m.matches(view) and view.body_calls == 0


def test_body_is_decoded_only_after_the_api_matched() -> None:
    m = compiled(apis=["SyncGroup"], group_id="g1")
    produce = FakeView(api_key=PRODUCE, decoded={"group_id": "g1"})
    assert not m.matches(produce) and produce.body_calls == 0
    wrong_version = compiled(apis=["SyncGroup"], versions=[5], group_id="g1")
    sync_v3 = FakeView(api_key=SYNC, api_version=3, decoded={"group_id": "g1"})
    assert not wrong_version.matches(sync_v3) and sync_v3.body_calls == 0
    sync = FakeView(api_key=SYNC, decoded={"group_id": "g1"})
    assert m.matches(sync) and sync.body_calls == 1


def test_body_field_without_apis_is_limited_to_apis_carrying_it() -> None:
    m = compiled(group_id="g1")
    produce = FakeView(api_key=PRODUCE, decoded={"group_id": "g1"})
    assert not m.matches(produce) and produce.body_calls == 0
    assert m.matches(FakeView(api_key=HEARTBEAT, decoded={"group_id": "g1"}))


def test_several_body_fields_without_apis_use_the_common_apis() -> None:
    m = compiled(generation_id=3, member_epoch=3)
    assert m.api_keys == frozenset({OFFSET_COMMIT})


@pytest.mark.parametrize(
    ("versions", "version", "expected"), [([3, 4], 3, True), ([3, 4], 5, False), (None, 9, True)]
)
def test_versions(versions: list[int] | None, version: int, expected: bool) -> None:
    fields: dict[str, Any] = {"apis": ["Metadata"]}
    if versions is not None:
        fields["versions"] = versions
    view = FakeView(api_key=codec.api_key_of("Metadata"), api_version=version)
    assert compiled(**fields).matches(view) is expected


@pytest.mark.parametrize(
    ("pattern", "client_id", "expected"),
    [("py-*", "py-consumer", True), ("py-*", "java-consumer", False),
     ("py-?", "py-1", True), ("py-?", "py-12", False), ("consumer", "consumer", True),
     ("consumer", "consumer-1", False), ("*", None, True), ("x*", None, False),
     ("[ab]-1", "b-1", True), ("PY-*", "py-1", False)],
)  # fmt: skip
def test_client_id_glob_matches_whole_id_case_sensitively(
    pattern: str, client_id: str | None, expected: bool
) -> None:
    assert compiled(client_id=pattern).matches(FakeView(api_key=0, client_id=client_id)) is expected


@pytest.mark.parametrize(
    ("pattern", "client_id", "expected"),
    [("^py-.*", "py-consumer", True), ("^py-.*", "xpy-consumer", False),
     ("consumer", "py-consumer-1", True), ("^consumer$", "consumer-1", False),
     ("^$", None, True), ("py-*", "apy", True)],
)  # fmt: skip
def test_client_id_regex_is_searched(pattern: str, client_id: str | None, expected: bool) -> None:
    m = compiled(client_id_regex=pattern)
    assert m.matches(FakeView(api_key=0, client_id=client_id)) is expected


def test_glob_and_regex_must_both_match() -> None:
    m = compiled(client_id="py-*", client_id_regex="-7$")
    assert m.matches(FakeView(api_key=0, client_id="py-7"))
    assert not m.matches(FakeView(api_key=0, client_id="py-8"))
    assert not m.matches(FakeView(api_key=0, client_id="go-7"))


def test_broker_and_connection() -> None:
    assert compiled(broker=-1).matches(FakeView(api_key=0, broker_node=-1))
    assert not compiled(broker=-1).matches(FakeView(api_key=0, broker_node=0))
    assert compiled(connection=17).matches(FakeView(api_key=0, connection_id=17))
    assert not compiled(connection=17).matches(FakeView(api_key=0, connection_id=18))


@pytest.mark.parametrize(
    ("field", "value", "api", "body"),
    [("group_id", "g1", SYNC, {"group_id": "g1"}),
     ("member_id", "m1", JOIN, {"member_id": "m1"}),
     ("group_instance_id", "i1", HEARTBEAT, {"group_instance_id": "i1"}),
     ("group_instance_id", "i1", CGH, {"instance_id": "i1"}),
     ("generation_id", 4, SYNC, {"generation_id": 4}),
     ("generation_id", 4, OFFSET_COMMIT, {"generation_id_or_member_epoch": 4}),
     ("member_epoch", 9, CGH, {"member_epoch": 9}),
     ("member_epoch", 9, OFFSET_COMMIT, {"generation_id_or_member_epoch": 9})],
)  # fmt: skip
def test_each_body_field(field: str, value: object, api: int, body: dict[str, Any]) -> None:
    m = compiled(**{field: value})
    assert m.matches(FakeView(api_key=api, decoded=body))
    other = value + 1 if isinstance(value, int) else f"{value}-other"
    wrong = {k: other for k in body}
    assert not m.matches(FakeView(api_key=api, decoded=wrong))
    assert not m.matches(FakeView(api_key=api, decoded={}))


def test_int_fields_do_not_match_strings_or_bools() -> None:
    m = compiled(generation_id=1)
    assert not m.matches(FakeView(api_key=SYNC, decoded={"generation_id": "1"}))
    assert not m.matches(FakeView(api_key=SYNC, decoded={"generation_id": True}))


def test_null_values_and_undecodable_bodies_do_not_match() -> None:
    m = compiled(group_instance_id="i1")
    assert not m.matches(FakeView(api_key=JOIN, decoded={"group_instance_id": None}))
    assert not m.matches(FakeView(api_key=JOIN, decoded=None))


def test_all_body_fields_must_match() -> None:
    m = compiled(apis=["SyncGroup"], group_id="g1", generation_id=2)
    assert m.matches(FakeView(api_key=SYNC, decoded={"group_id": "g1", "generation_id": 2}))
    assert not m.matches(FakeView(api_key=SYNC, decoded={"group_id": "g1", "generation_id": 3}))


def test_describe_groups_matches_any_listed_group() -> None:
    m = compiled(group_id="g2")
    assert m.matches(FakeView(api_key=DESCRIBE, decoded={"groups": ["g1", "g2"]}))
    assert not m.matches(FakeView(api_key=DESCRIBE, decoded={"groups": ["g1", "g3"]}))
    assert not m.matches(FakeView(api_key=DESCRIBE, decoded={"groups": None}))


def test_offset_fetch_old_and_batched_forms() -> None:
    m = compiled(group_id="g2")
    assert m.matches(FakeView(api_key=OFFSET_FETCH, api_version=7, decoded={"group_id": "g2"}))
    batched = {"groups": [{"group_id": "g1", "topics": None}, {"group_id": "g2", "topics": []}]}
    assert m.matches(FakeView(api_key=OFFSET_FETCH, api_version=8, decoded=batched))
    assert not compiled(group_id="g3").matches(
        FakeView(api_key=OFFSET_FETCH, api_version=8, decoded=batched)
    )
    v9 = {"groups": [{"group_id": "g1", "member_id": "m1", "member_epoch": 5}]}
    assert compiled(member_id="m1").matches(FakeView(api_key=OFFSET_FETCH, decoded=v9))
    assert compiled(member_epoch=5).matches(FakeView(api_key=OFFSET_FETCH, decoded=v9))


def test_find_coordinator_keys_match_only_for_groups() -> None:
    m = compiled(group_id="g1")
    assert m.matches(FakeView(api_key=FIND, api_version=0, decoded={"key": "g1"}))
    assert m.matches(FakeView(api_key=FIND, decoded={"key": "g1", "key_type": 0}))
    assert not m.matches(FakeView(api_key=FIND, decoded={"key": "g1", "key_type": 1}))
    batched = {"key_type": 0, "coordinator_keys": ["g0", "g1"]}
    assert m.matches(FakeView(api_key=FIND, api_version=4, decoded=batched))
    txn = {"key_type": 1, "coordinator_keys": ["g1"]}
    assert not m.matches(FakeView(api_key=FIND, api_version=4, decoded=txn))


def test_leave_group_old_and_batched_members() -> None:
    m = compiled(member_id="m2")
    assert m.matches(FakeView(api_key=LEAVE, api_version=2, decoded={"member_id": "m2"}))
    members = [
        {"member_id": "m1", "group_instance_id": None},
        {"member_id": "m2", "group_instance_id": "i2"},
    ]
    batched = {"group_id": "g", "members": members}
    assert m.matches(FakeView(api_key=LEAVE, api_version=3, decoded=batched))
    assert compiled(group_instance_id="i2").matches(FakeView(api_key=LEAVE, decoded=batched))
    assert not compiled(member_id="m3").matches(FakeView(api_key=LEAVE, decoded=batched))


def test_body_table_names_real_fields_of_the_specs() -> None:
    """Every path in BODY_FIELDS exists in the codec's schema of that API's request."""
    from kafka_chaos_proxy.codec import schema

    for field_name, apis in BODY_FIELDS.items():
        for api_name, paths in apis.items():
            spec = schema.MESSAGES[f"{api_name}Request"]
            for path in paths:
                fields = spec.fields
                for step in path:
                    if step == "*":
                        continue
                    found = [f for f in fields if f.name == step]
                    assert found, f"{field_name}: {api_name} has no {'.'.join(path)}"
                    nested = found[0].fields
                    if nested is None and found[0].type.startswith("[]"):
                        struct = spec.structs.get(found[0].type[2:])
                        nested = struct.fields if struct else None
                    fields = nested or ()


def test_any_and_unnamed_apis_spare_bootstrap_and_authentication() -> None:
    from kafka_chaos_proxy.faults.engine import FaultEngine
    from kafka_chaos_proxy.faults.match import SPARED_APIS
    from kafka_chaos_proxy.faults.names import api_keys

    engine = FaultEngine()
    engine.add({"id": "all", "match": {"any": True}, "action": {"type": "close"}})
    engine.add({"id": "cid", "match": {"client_id": "app"}, "action": {"type": "close"}})
    spared = [api_keys()[name] for name in SPARED_APIS]
    for key in spared:
        assert not engine.on_request(FakeView(api_key=key, client_id="app")).is_fault
    assert engine.on_request(FakeView(api_key=14, client_id="x")).rule_id == "all"
    engine.clear()
    engine.add({"match": {"apis": ["Metadata"]}, "action": {"type": "close"}})  # named: hit
    assert engine.on_request(FakeView(api_key=api_keys()["Metadata"])).is_fault


def test_principal_is_a_glob_on_the_authenticated_name() -> None:
    m = compiled(apis=["SyncGroup"], principal="ali*")
    assert m.matches(FakeView(api_key=SYNC, principal="alice"))
    assert not m.matches(FakeView(api_key=SYNC, principal="bob"))
    assert not m.matches(FakeView(api_key=SYNC, principal=None))  # unauthenticated: ''
    anyone = compiled(apis=["SyncGroup"], principal="*")
    assert anyone.matches(FakeView(api_key=SYNC, principal=None))
    dn = compiled(apis=["SyncGroup"], principal="CN=client-app,*")
    assert dn.matches(FakeView(api_key=SYNC, principal="CN=client-app,O=acme"))


def test_a_principal_pattern_is_checked_when_the_rule_is_stored() -> None:
    with pytest.raises(ValueError, match="principal"):
        Match.model_validate({"apis": ["SyncGroup"], "principal": "x" * 1000})
