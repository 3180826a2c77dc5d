"""Harness options per scenario and per member (`setup.members` and its `overrides`): what the
scenario format accepts, how a member's settings merge, the flags each member's harness gets,
and which clients can honour which option (the others are n/a with the reason)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from kafka_chaos_proxy.lab.matrix.cell import member_flags, option_flags
from kafka_chaos_proxy.lab.matrix.clients import CLIENTS
from kafka_chaos_proxy.lab.scenario import Scenario, ScenarioError, parse_scenario

PYTHON_HARNESSES = Path(__file__).resolve().parents[2] / "clients" / "python"


def scenario(members: dict[str, Any], **extra: Any) -> Scenario:
    return parse_scenario({"name": "o", "version": 1, "description": "o",
                           "setup": {"members": members}, **extra}, "o.yaml")


def flags(s: Scenario, index: int, protocol: str = "classic") -> list[str]:
    return member_flags(s, index, bootstrap="b:1", topic="t", group="g", client_prefix="p",
                        protocol=protocol)


def as_dict(argv: list[str]) -> dict[str, str]:
    return dict(zip(argv[::2], argv[1::2], strict=True))


# --- the scenario model --------------------------------------------------------------------


def test_defaults_are_the_libraries_and_the_plain_application() -> None:
    m = scenario({}).setup.members.settings(0)
    assert (m.commit, m.commit_in_revoke, m.consume_mode, m.processing_delay_ms) == \
        ("auto", False, "loop", 0)
    assert m.request_timeout_ms is None and m.assignor is None  # the library's default
    assert m.sarama_return_errors is False  # sarama's Consumer.Return.Errors default
    assert m.async_processing is False


def test_group_defaults_and_per_member_overrides_merge() -> None:
    m = scenario({
        "count": 3, "commit": "both", "processing_delay_ms": 200, "assignor": "roundrobin",
        "request_timeout_ms": 20000, "sarama_return_errors": True,
        "overrides": {
            1: {"processing_delay_ms": 0, "commit": "manual", "commit_in_revoke": True,
                "consume_mode": "once", "async_processing": True,
                "sarama_return_errors": False},
            2: {"assignor": None, "request_timeout_ms": None, "commit_in_revoke": None},
        }}).setup.members
    zero, one, two = m.settings(0), m.settings(1), m.settings(2)
    assert (zero.commit, zero.processing_delay_ms, zero.assignor, zero.request_timeout_ms,
            zero.sarama_return_errors) == ("both", 200, "roundrobin", 20000, True)
    # An explicit 0 / false in an override wins over the group's value.
    assert (one.processing_delay_ms, one.commit, one.commit_in_revoke, one.consume_mode,
            one.async_processing, one.sarama_return_errors) == \
        (0, "manual", True, "once", True, False)
    assert (one.assignor, one.request_timeout_ms) == ("roundrobin", 20000)
    # null: the library's default for assignor and request timeout, the group's otherwise.
    assert (two.assignor, two.request_timeout_ms, two.commit_in_revoke) == (None, None, False)
    assert two.processing_delay_ms == 200


def test_two_members_can_share_one_group_instance_id() -> None:
    s = scenario({"count": 2, "overrides": {0: {"group_instance_id": "shared", "commit": "auto"},
                                           1: {"group_instance_id": "shared",
                                               "commit": "manual"}}})
    zero, one = as_dict(flags(s, 0)), as_dict(flags(s, 1))
    assert zero["--instance-id"] == one["--instance-id"] == "shared"
    assert (zero["--commit"], one["--commit"]) == ("auto", "manual")


@pytest.mark.parametrize(("members", "message"), [
    ({"commit": "sometimes"}, "setup.members.commit: Input should be 'auto', 'manual' or 'both'"),
    ({"assignor": "sticky-ish"}, "setup.members.assignor: Input should be 'range'"),
    ({"consume_mode": "twice"}, "setup.members.consume_mode"),
    ({"processing_delay_ms": -1}, "setup.members.processing_delay_ms"),
    ({"processing_delay_ms": 60_001}, "setup.members.processing_delay_ms"),
    ({"request_timeout_ms": 10}, "setup.members.request_timeout_ms"),
    ({"sarama_return_errors": "maybe"}, "setup.members.sarama_return_errors"),
    ({"async_processing": "often"}, "setup.members.async_processing"),
    ({"return_errors": True}, "setup.members.return_errors: Extra inputs are not permitted"),
    ({"count": 2, "overrides": {1: {"commit_in_revoke": "perhaps"}}},
     "setup.members.overrides.1.commit_in_revoke"),
    ({"count": 2, "overrides": {1: {"consume_mode": "never"}}},
     "setup.members.overrides.1.consume_mode"),
    ({"protocol": "consumer", "assignor": "range"},
     "setup.members: assignor: a client-side assignor is a classic-protocol setting"),
    ({"protocol": "consumer", "count": 2, "overrides": {1: {"assignor": "sticky"}}},
     "setup.members: overrides.1: assignor: a client-side assignor"),
])
def test_option_mistakes_are_one_line_naming_the_field(members: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(members)
    text = str(info.value)
    assert text.startswith("o.yaml: ") and message in text and "\n" not in text


# --- the flags each member's harness gets ----------------------------------------------


def test_default_options_add_no_flags() -> None:
    argv = flags(scenario({}), 0)
    assert as_dict(argv)["--commit"] == "auto"
    assert option_flags(scenario({}).setup.members.settings(0)) == []
    for flag in ("--request-timeout-ms", "--assignor", "--commit-in-revoke",
                 "--processing-delay-ms", "--async-processing", "--consume-mode",
                 "--return-errors"):
        assert flag not in argv


def test_each_option_becomes_its_flag_per_member() -> None:
    s = scenario({"count": 2, "commit": "both", "request_timeout_ms": 15000,
                  "assignor": "cooperative-sticky", "commit_in_revoke": True,
                  "processing_delay_ms": 250, "overrides": {
                      1: {"async_processing": True, "consume_mode": "once",
                          "sarama_return_errors": True, "processing_delay_ms": 0,
                          "assignor": "range"}}})
    zero, one = as_dict(flags(s, 0)), as_dict(flags(s, 1))
    assert {k: zero[k] for k in ("--commit", "--request-timeout-ms", "--assignor",
                                 "--commit-in-revoke", "--processing-delay-ms")} == {
        "--commit": "both", "--request-timeout-ms": "15000", "--assignor": "cooperative-sticky",
        "--commit-in-revoke": "true", "--processing-delay-ms": "250"}
    assert "--async-processing" not in zero and "--consume-mode" not in zero
    assert (one["--async-processing"], one["--consume-mode"], one["--return-errors"],
            one["--assignor"]) == ("true", "once", "true", "range")
    assert "--processing-delay-ms" not in one


def _harness_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("harness_common_under_test",
                                                  PYTHON_HARNESSES / "harness_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_python_harnesses_parse_what_member_flags_builds() -> None:
    """The contract end to end for the Python harnesses: the runner's argv parses into the
    options it names (the Go and Java parsers are exercised by the integration tests)."""
    common = _harness_common()
    s = scenario({"count": 2, "commit": "both", "request_timeout_ms": 15000,
                  "assignor": "sticky", "commit_in_revoke": True, "processing_delay_ms": 250,
                  "overrides": {1: {"consume_mode": "once", "async_processing": True,
                                    "sarama_return_errors": True}}})
    zero = common.parse_args(flags(s, 0))
    assert (zero.commit, zero.request_timeout_ms, zero.assignor, zero.commit_in_revoke,
            zero.processing_delay_ms, zero.async_processing, zero.consume_mode,
            zero.return_errors) == ("both", 15000, "sticky", True, 250, False, "loop", "false")
    assert common.auto_commit(zero) and common.explicit_commit(zero)
    assert common.unsupported(zero, "aiokafka", ("range", "roundrobin", "sticky")) is None
    one = common.parse_args(flags(s, 1))
    assert (one.consume_mode, one.async_processing, one.return_errors) == \
        ("once", True, "true")
    assert "sarama harness only" in common.unsupported(one, "kafka-python")
    with pytest.raises(SystemExit):
        common.parse_args([*flags(s, 0), "--commit-in-revoke", "sometimes"])


# --- which client honours which option -------------------------------------------------

#: option -> value -> the clients that cannot run it (everything else can).
UNSUPPORTED: dict[str, dict[Any, set[str]]] = {
    "consume_mode": {"once": set(CLIENTS) - {"sarama"}},
    "async_processing": {True: set(CLIENTS) - {"sarama"}},
    "commit_in_revoke": {True: {"kafka-go"}},
    "request_timeout_ms": {20000: {"kafka-go"}},
    "assignor": {
        "range": {"java-consumer"},
        "roundrobin": {"java-consumer"},
        "sticky": {"kafka-go", "confluent-kafka", "java-consumer"},
        "cooperative-sticky": {"kafka-go", "aiokafka", "java-consumer"},
    },
    "commit": {"both": set(), "manual": set()},
    "processing_delay_ms": {500: set()},
    "sarama_return_errors": {True: set()},
}


@pytest.mark.parametrize(("option", "value"), [
    (option, value) for option, values in UNSUPPORTED.items() for value in values])
def test_a_client_that_cannot_honour_an_option_is_na_with_the_reason(option: str,
                                                                    value: Any) -> None:
    s = scenario({option: value}, protocols=["classic", "consumer"])
    for name, spec in CLIENTS.items():
        reason = spec.not_applicable_reason(s)
        if name in UNSUPPORTED[option][value]:
            assert reason is not None and "\n" not in reason, name
            assert spec.protocol_for_scenario(s) is None
            assert option.split("_ms")[0].replace("_", " ") in reason.replace("_", " ") or \
                str(value) in reason, (name, reason)
        else:
            assert reason is None, (name, reason)


def test_an_option_asked_of_one_member_names_that_member() -> None:
    s = scenario({"count": 2, "overrides": {1: {"consume_mode": "once"}}})
    assert CLIENTS["sarama"].not_applicable_reason(s) is None
    reason = CLIENTS["franz-go"].not_applicable_reason(s)
    assert reason is not None and reason.startswith("member 1: consume_mode once: ")
    # A member a step starts later counts too.
    later = parse_scenario({"name": "o", "version": 1, "description": "o",
                            "setup": {"members": {"overrides": {1: {"commit_in_revoke": True}}}},
                            "steps": [{"at": 5, "start_members": 1}]})
    assert (CLIENTS["kafka-go"].not_applicable_reason(later) or "").startswith(
        "member 1: commit_in_revoke: kafka-go's Reader has no revoke callback")


def test_a_client_side_assignor_is_na_where_the_cell_runs_kip848() -> None:
    s = scenario({"assignor": "range"}, protocols=["consumer", "classic"])
    assert "protocol consumer" in (CLIENTS["franz-go"].not_applicable_reason(s) or "")
    assert CLIENTS["sarama"].protocol_for_scenario(s) == "classic"
