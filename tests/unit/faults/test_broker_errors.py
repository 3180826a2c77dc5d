"""The table of errors a real broker answers each group API with (faults.broker_errors):
the facts read from Kafka's code, the table's consistency with the codec and errors.tsv, the
questions asked of it, and docs/broker-errors.md being generated from it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults import broker_errors as be
from kafka_chaos_proxy.faults.broker_errors import broker_returns, why_not, why_not_at
from kafka_chaos_proxy.faults.names import api_keys

ROOT = Path(__file__).resolve().parents[3]
ERRORS_TSV = ROOT.parent / "shared" / "kafka-message-specs" / "errors.tsv"
DOC = ROOT / "docs" / "broker-errors.md"


def _tsv_names() -> set[str]:
    if not ERRORS_TSV.exists():  # outside the workspace: the codec carries the same list
        return set(codec.ERROR_CODES)
    with ERRORS_TSV.open(encoding="utf-8") as f:
        return {row["name"] for row in csv.DictReader(f, delimiter="\t")}


# ------------------------------------------------------------------ facts read from Kafka

# (api, version, error, does a broker answer it?)
FACTS = [
    # Heartbeat: while loading, both coordinators answer NONE, never the loading error.
    ("Heartbeat", None, "COORDINATOR_LOAD_IN_PROGRESS", False),
    ("Heartbeat", 4, "COORDINATOR_LOAD_IN_PROGRESS", False),
    ("Heartbeat", 0, "REBALANCE_IN_PROGRESS", True),
    ("Heartbeat", 4, "ILLEGAL_GENERATION", True),
    ("Heartbeat", 0, "UNKNOWN_MEMBER_ID", True),
    ("Heartbeat", 2, "NOT_COORDINATOR", True),
    ("Heartbeat", 2, "COORDINATOR_NOT_AVAILABLE", True),
    ("Heartbeat", 2, "FENCED_INSTANCE_ID", False),  # no group.instance.id before v3
    ("Heartbeat", 3, "FENCED_INSTANCE_ID", True),
    ("Heartbeat", None, "MEMBER_ID_REQUIRED", False),
    ("Heartbeat", None, "UNRELEASED_INSTANCE_ID", False),
    ("Heartbeat", None, "FENCED_MEMBER_EPOCH", False),
    # JoinGroup: MEMBER_ID_REQUIRED from v4 (KIP-394), FENCED_INSTANCE_ID from v5 (static).
    ("JoinGroup", 3, "MEMBER_ID_REQUIRED", False),
    ("JoinGroup", 4, "MEMBER_ID_REQUIRED", True),
    ("JoinGroup", 9, "MEMBER_ID_REQUIRED", True),
    ("JoinGroup", 4, "FENCED_INSTANCE_ID", False),
    ("JoinGroup", 5, "FENCED_INSTANCE_ID", True),
    ("JoinGroup", 0, "COORDINATOR_LOAD_IN_PROGRESS", True),
    ("JoinGroup", 0, "INVALID_SESSION_TIMEOUT", True),
    ("JoinGroup", 0, "GROUP_MAX_SIZE_REACHED", True),
    ("JoinGroup", None, "ILLEGAL_GENERATION", False),
    ("JoinGroup", None, "UNRELEASED_INSTANCE_ID", False),
    ("JoinGroup", None, "GROUP_ID_NOT_FOUND", False),
    # SyncGroup: the loading error from the new coordinator; the protocol check from v5.
    ("SyncGroup", 0, "COORDINATOR_LOAD_IN_PROGRESS", True),
    ("SyncGroup", 0, "REBALANCE_IN_PROGRESS", True),
    ("SyncGroup", 4, "INCONSISTENT_GROUP_PROTOCOL", False),
    ("SyncGroup", 5, "INCONSISTENT_GROUP_PROTOCOL", True),
    ("SyncGroup", 2, "FENCED_INSTANCE_ID", False),
    ("SyncGroup", 3, "FENCED_INSTANCE_ID", True),
    ("SyncGroup", None, "MEMBER_ID_REQUIRED", False),
    ("SyncGroup", None, "GROUP_MAX_SIZE_REACHED", False),
    ("SyncGroup", None, "INVALID_SESSION_TIMEOUT", False),
    # LeaveGroup: no generation, no version check.
    ("LeaveGroup", 0, "UNKNOWN_MEMBER_ID", True),
    ("LeaveGroup", 2, "FENCED_INSTANCE_ID", False),
    ("LeaveGroup", 3, "FENCED_INSTANCE_ID", True),
    ("LeaveGroup", None, "ILLEGAL_GENERATION", False),
    ("LeaveGroup", None, "REBALANCE_IN_PROGRESS", False),
    ("LeaveGroup", None, "UNSUPPORTED_VERSION", False),
    # OffsetCommit: v0 goes to ZooKeeper; GROUP_ID_NOT_FOUND and STALE_MEMBER_EPOCH from v9.
    ("OffsetCommit", 0, "NOT_COORDINATOR", False),
    ("OffsetCommit", 0, "UNSUPPORTED_VERSION", True),
    ("OffsetCommit", 1, "REBALANCE_IN_PROGRESS", True),
    ("OffsetCommit", 8, "ILLEGAL_GENERATION", True),
    ("OffsetCommit", 8, "GROUP_ID_NOT_FOUND", False),
    ("OffsetCommit", 9, "GROUP_ID_NOT_FOUND", True),
    ("OffsetCommit", 8, "STALE_MEMBER_EPOCH", False),
    ("OffsetCommit", 9, "STALE_MEMBER_EPOCH", True),
    ("OffsetCommit", 6, "FENCED_INSTANCE_ID", False),
    ("OffsetCommit", 7, "FENCED_INSTANCE_ID", True),
    ("OffsetCommit", 8, "COORDINATOR_LOAD_IN_PROGRESS", True),
    ("OffsetCommit", None, "INVALID_GROUP_ID", False),
    ("OffsetCommit", None, "MEMBER_ID_REQUIRED", False),
    # OffsetFetch: require_stable from v7, member checks from v9.
    ("OffsetFetch", 6, "UNSTABLE_OFFSET_COMMIT", False),
    ("OffsetFetch", 7, "UNSTABLE_OFFSET_COMMIT", True),
    ("OffsetFetch", 8, "STALE_MEMBER_EPOCH", False),
    ("OffsetFetch", 9, "STALE_MEMBER_EPOCH", True),
    ("OffsetFetch", 1, "COORDINATOR_LOAD_IN_PROGRESS", True),
    ("OffsetFetch", None, "REBALANCE_IN_PROGRESS", False),
    ("OffsetFetch", None, "ILLEGAL_GENERATION", True),
    # TxnOffsetCommit: the loading error from v2, TRANSACTION_ABORTABLE from v4.
    ("TxnOffsetCommit", 1, "COORDINATOR_LOAD_IN_PROGRESS", False),
    ("TxnOffsetCommit", 2, "COORDINATOR_LOAD_IN_PROGRESS", True),
    ("TxnOffsetCommit", 3, "TRANSACTION_ABORTABLE", False),
    ("TxnOffsetCommit", 4, "TRANSACTION_ABORTABLE", True),
    ("TxnOffsetCommit", 0, "INVALID_TXN_STATE", True),
    ("TxnOffsetCommit", None, "REBALANCE_IN_PROGRESS", False),
    ("TxnOffsetCommit", None, "PRODUCER_FENCED", False),
    ("TxnOffsetCommit", 2, "ILLEGAL_GENERATION", False),
    ("TxnOffsetCommit", 3, "ILLEGAL_GENERATION", True),
    # FindCoordinator is answered from metadata.
    ("FindCoordinator", None, "NOT_COORDINATOR", False),
    ("FindCoordinator", None, "COORDINATOR_LOAD_IN_PROGRESS", False),
    ("FindCoordinator", 0, "COORDINATOR_NOT_AVAILABLE", True),
    ("FindCoordinator", 4, "GROUP_AUTHORIZATION_FAILED", True),
    ("FindCoordinator", 0, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", False),
    # DescribeGroups: an unknown group is Dead, not an error.
    ("DescribeGroups", None, "GROUP_ID_NOT_FOUND", False),
    ("DescribeGroups", 5, "COORDINATOR_LOAD_IN_PROGRESS", True),
    # The consumer protocol (KIP-848).
    ("ConsumerGroupHeartbeat", 0, "UNRELEASED_INSTANCE_ID", True),
    ("ConsumerGroupHeartbeat", 0, "FENCED_MEMBER_EPOCH", True),
    ("ConsumerGroupHeartbeat", 0, "UNSUPPORTED_ASSIGNOR", True),
    ("ConsumerGroupHeartbeat", 0, "REBALANCE_IN_PROGRESS", False),
    ("ConsumerGroupHeartbeat", 0, "ILLEGAL_GENERATION", False),
    ("ConsumerGroupHeartbeat", 0, "INVALID_GROUP_ID", False),
    ("ConsumerGroupDescribe", 0, "GROUP_ID_NOT_FOUND", True),
    ("ShareGroupHeartbeat", 0, "FENCED_MEMBER_EPOCH", True),
    ("ShareGroupHeartbeat", 0, "UNRELEASED_INSTANCE_ID", False),
]


@pytest.mark.parametrize(("api", "version", "error", "returned"), FACTS)
def test_facts_read_from_kafka(api: str, version: int | None, error: str, returned: bool) -> None:
    assert broker_returns(api, version, error) is returned
    assert (why_not(api, version, error) is None) is returned


def test_none_is_always_returned() -> None:
    assert broker_returns("Heartbeat", 0, "NONE")
    assert why_not("FindCoordinator", None, "NONE") is None


def test_apis_not_in_the_table_are_not_judged() -> None:
    assert broker_returns("Produce", 9, "COORDINATOR_LOAD_IN_PROGRESS")
    assert why_not("Fetch", None, "MEMBER_ID_REQUIRED") is None
    assert broker_returns("NoSuchApi", 0, "NOT_COORDINATOR")


def test_versions_not_read_are_not_judged() -> None:
    # ConsumerGroupHeartbeat v1 was unstable at the commit (its regex errors came later).
    assert not broker_returns("ConsumerGroupHeartbeat", 0, "TOPIC_AUTHORIZATION_FAILED")
    assert broker_returns("ConsumerGroupHeartbeat", 1, "TOPIC_AUTHORIZATION_FAILED")
    assert broker_returns("Heartbeat", 5, "COORDINATOR_LOAD_IN_PROGRESS")
    assert why_not_at("Heartbeat", [4, 5], "FENCED_MEMBER_EPOCH") is None


def test_spellings_of_apis_and_errors() -> None:
    assert not broker_returns("heartbeat", 0, "coordinator_load_in_progress")
    assert not broker_returns("12", 0, "14")
    assert broker_returns("sync_group", 0, "CoordinatorLoadInProgress")
    with pytest.raises(ValueError, match="unknown Kafka error"):
        broker_returns("Heartbeat", 0, "NO_SUCH_ERROR")


def test_why_not_names_what_the_broker_answers() -> None:
    text = why_not("Heartbeat", None, "COORDINATOR_LOAD_IN_PROGRESS")
    assert text is not None
    assert text.startswith(
        "a real broker never answers Heartbeat with COORDINATOR_LOAD_IN_PROGRESS")
    assert "answer heartbeats with NONE" in text
    assert "COORDINATOR_NOT_AVAILABLE" in text and "NOT_COORDINATOR" in text
    assert text.endswith("faults built on it are robustness tests, not races")
    assert "\n" not in text


def test_why_not_names_the_versions_that_do_get_it() -> None:
    text = why_not("JoinGroup", 3, "MEMBER_ID_REQUIRED")
    assert text is not None
    assert "never answers JoinGroup v3 with MEMBER_ID_REQUIRED; it does at v4+" in text
    text = why_not_at("Heartbeat", [0, 1, 2], "FENCED_INSTANCE_ID")
    assert text is not None and "Heartbeat v0-2" in text and "v3+" in text
    assert why_not_at("Heartbeat", [2, 3], "FENCED_INSTANCE_ID") is None
    assert why_not_at("Heartbeat", [], "FENCED_INSTANCE_ID") is None


# ------------------------------------------------------------------ the table itself


def test_every_error_name_is_in_errors_tsv() -> None:
    names = _tsv_names()
    used = {e.error for entries in be.BROKER_ERRORS.values() for e in entries}
    used |= {error for _, error in be.INSTEAD}
    assert used - names == set()
    assert "NONE" not in used


def test_every_api_is_one_the_codec_knows() -> None:
    apis = set(be.BROKER_ERRORS) | {api for api, _ in be.INSTEAD}
    assert apis - set(api_keys()) == set()
    assert apis <= set(codec.API_NAMES.values())
    assert set(be.KNOWN_VERSIONS) == set(be.BROKER_ERRORS)


@pytest.mark.parametrize("api", sorted(be.BROKER_ERRORS))
def test_versions_are_within_the_codecs(api: str) -> None:
    low, high = codec.supported_versions(codec.api_key_of(api))
    known_low, known_high = be.KNOWN_VERSIONS[api]
    assert low <= known_low <= known_high <= high
    for entry in be.BROKER_ERRORS[api]:
        top = known_high if entry.max_version is None else entry.max_version
        assert known_low <= entry.min_version <= top <= known_high, entry


def test_every_entry_says_where_it_was_read() -> None:
    for api, entries in be.BROKER_ERRORS.items():
        for entry in entries:
            files = {ref.split("#")[0] for ref in entry.source.split("; ")}
            assert files <= set(be.SOURCE_PATHS), (api, entry)
    for note in be.INSTEAD.values():
        assert {ref.split("#")[0] for ref in note.source.split("; ")} <= set(be.SOURCE_PATHS)


def test_instead_notes_are_about_errors_never_sent() -> None:
    for (api, error), note in be.INSTEAD.items():
        assert not broker_returns(api, None, error), (api, error)
        assert note.text in (why_not(api, None, error) or "")


def test_entries_are_not_duplicated() -> None:
    for api, entries in be.BROKER_ERRORS.items():
        keys = [(e.error, e.min_version, e.max_version) for e in entries]
        assert len(keys) == len(set(keys)), api


# ------------------------------------------------------------------ docs/broker-errors.md


@pytest.mark.parametrize("block", sorted(be.BLOCKS))
def test_the_doc_shows_the_modules_table(block: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    _, _, render = be.BLOCKS[block]
    assert be.generated_block(doc, block) == render(), (
        "docs/broker-errors.md is out of date: run "
        "`python -m kafka_chaos_proxy.faults.broker_errors docs/broker-errors.md`")


def test_the_doc_rows_are_the_table_rows() -> None:
    doc = be.generated_block(DOC.read_text(encoding="utf-8"), "table")
    rows = [tuple(c.strip() for c in line.strip("|").split(" | "))
            for line in doc.splitlines()[2:]]
    assert rows == [tuple(r) for r in be.table_rows()]


def test_the_doc_names_the_commit_read() -> None:
    assert be.KAFKA_COMMIT in DOC.read_text(encoding="utf-8")
    assert be.KAFKA_COMMIT in (be.__doc__ or "")


def test_with_tables_rewrites_only_the_blocks() -> None:
    stale = DOC.read_text(encoding="utf-8").replace("| Heartbeat |", "| Hearbeat |")
    assert be.with_tables(stale) == DOC.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        be.with_tables("no markers here")
