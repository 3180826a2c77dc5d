"""The fetch-session tracker behind the Fetch sample events (proxy/fetch_sessions.py): full and
incremental requests (KIP-227), versions without sessions, topic ids named from Metadata, the
bounds, and when an event is due."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_chaos_proxy.proxy.fetch_sessions import (
    DEFAULT_MAX_PARTITIONS,
    DEFAULT_MAX_TOPIC_IDS,
    FetchSession,
    TopicNames,
)


def fetch(topics: dict[Any, list[int]], *, session_id: int = 0, epoch: int = 0,
          forgotten: dict[Any, list[int]] | None = None, by_id: bool = False) -> dict[str, Any]:
    """A decoded Fetch request body, as the codec gives it (only the fields the tracker
    reads, and a few it must ignore)."""
    key = "topic_id" if by_id else "topic"
    return {
        "replica_id": -1, "max_wait_ms": 500, "min_bytes": 1,
        "session_id": session_id, "session_epoch": epoch,
        "topics": [{key: t, "partitions": [{"partition": p, "fetch_offset": 7} for p in ps]}
                   for t, ps in topics.items()],
        "forgotten_topics_data": [{key: t, "partitions": ps}
                                  for t, ps in (forgotten or {}).items()],
    }


def test_a_full_request_lists_the_whole_set() -> None:
    s = FetchSession()
    assert s.apply(12, fetch({"a": [2, 0], "b": [1]}))
    assert s.partitions() == {"a": [0, 2], "b": [1]}
    assert (s.session_id, s.session_epoch, s.count) == (0, 0, 3)
    # The same full set again: no change; a smaller one replaces it.
    assert not s.apply(12, fetch({"b": [1], "a": [0, 2]}))
    assert s.apply(12, fetch({"a": [0]}, epoch=-1))
    assert (s.partitions(), s.session_epoch) == ({"a": [0]}, -1)


def test_incremental_requests_add_listed_and_remove_forgotten() -> None:
    s = FetchSession()
    s.apply(12, fetch({"a": [0, 1]}))
    # Epoch 1 lists only what changed: partitions whose offset moved are no change of the set.
    assert not s.apply(12, fetch({"a": [1]}, session_id=55, epoch=1))
    assert s.partitions() == {"a": [0, 1]} and s.session_id == 55
    assert s.apply(12, fetch({"b": [3]}, session_id=55, epoch=2))
    assert s.partitions() == {"a": [0, 1], "b": [3]}
    assert s.apply(12, fetch({}, session_id=55, epoch=3, forgotten={"a": [0, 1], "b": [9]}))
    assert s.partitions() == {"b": [3]} and s.count == 1
    # Forgetting what is not there is no change.
    assert not s.apply(12, fetch({}, session_id=55, epoch=4, forgotten={"zzz": [1], "b": [4]}))
    assert s.session_epoch == 4
    # Listed and forgotten in one request: the set is as it was.
    assert not s.apply(12, fetch({"c": [0]}, session_id=55, epoch=5, forgotten={"c": [0]}))
    assert s.partitions() == {"b": [3]}


def test_a_new_full_request_resets_the_session() -> None:
    s = FetchSession()
    s.apply(12, fetch({"a": [0, 1, 2]}))
    s.apply(12, fetch({"b": [0]}, session_id=9, epoch=1))
    # The broker lost the session (FETCH_SESSION_ID_NOT_FOUND): the client starts again with
    # epoch 0 and the whole set, which is all the set is now.
    assert s.apply(12, fetch({"a": [2]}, session_id=0, epoch=0))
    assert s.partitions() == {"a": [2]}
    assert (s.session_id, s.session_epoch) == (0, 0)


def test_versions_before_7_have_no_sessions() -> None:
    s = FetchSession()
    body = fetch({"a": [0, 1]}, session_id=5, epoch=3)  # fields a v6 body never carries
    assert s.apply(6, body)
    assert s.partitions() == {"a": [0, 1]}
    assert (s.session_id, s.session_epoch) == (0, -1)
    body = {"replica_id": -1, "topics": [{"topic": "a", "partitions": [{"partition": 1}]}]}
    assert s.apply(4, body)  # each request is the whole set
    assert s.partitions() == {"a": [1]}


def test_v13_topic_ids_are_named_from_metadata_when_known() -> None:
    known, unknown = uuid.uuid4(), uuid.uuid4()
    names = TopicNames()
    names.learn_metadata({"topics": [
        {"name": "orders", "topic_id": known, "partitions": []},
        {"name": "old", "topic_id": uuid.UUID(int=0)},  # a v9- answer: no id, nothing learned
        {"name": None, "topic_id": uuid.uuid4()}]})
    assert len(names) == 1
    s = FetchSession()
    s.apply(13, fetch({known: [1, 0], unknown: [4]}, by_id=True))
    assert s.partitions(names) == {"orders": [0, 1], f"topic_id:{unknown}": [4]}
    # An id learned later names the partitions already held; forgotten works by id too.
    names.learn(unknown, "payments")
    assert s.partitions(names) == {"orders": [0, 1], "payments": [4]}
    assert s.apply(13, fetch({}, session_id=3, epoch=1, forgotten={known: [0]}, by_id=True))
    assert s.partitions(names) == {"orders": [1], "payments": [4]}
    assert s.partitions() == {f"topic_id:{known}": [1], f"topic_id:{unknown}": [4]}


def test_the_partition_bound_drops_and_counts_until_the_next_full_request() -> None:
    assert DEFAULT_MAX_PARTITIONS == 10_000
    s = FetchSession(max_partitions=3)
    assert s.apply(12, fetch({"a": [0, 1, 2, 3, 4]}))
    assert (s.count, s.dropped) == (3, 2)
    assert sum(len(v) for v in s.partitions().values()) == 3
    s.apply(12, fetch({"b": [0]}, session_id=1, epoch=1))
    assert (s.count, s.dropped) == (3, 3)
    s.apply(12, fetch({}, session_id=1, epoch=2, forgotten={"a": [0]}))
    assert s.apply(12, fetch({"b": [0]}, session_id=1, epoch=3))  # room again
    assert s.count == 3
    s.apply(12, fetch({"c": [0]}))
    assert (s.partitions(), s.dropped) == ({"c": [0]}, 0)


def test_the_topic_id_bound_forgets_the_oldest_learned() -> None:
    assert DEFAULT_MAX_TOPIC_IDS == 100_000
    ids = [uuid.uuid4() for _ in range(4)]
    names = TopicNames(max_entries=2)
    names.learn(ids[0], "t0")
    names.learn(ids[1], "t1")
    names.learn(ids[0], "t0")  # learned again: now the newest
    names.learn(ids[2], "t2")
    assert len(names) == 2
    assert [names.name(i) for i in ids[:3]] == ["t0", f"topic_id:{ids[1]}", "t2"]
    names.learn(ids[3].bytes, "t3")  # 16 raw bytes are an id as well
    assert names.name(ids[3]) == "t3" and names.name("plain") == "plain"


def test_an_event_is_due_first_on_change_or_after_the_interval() -> None:
    s = FetchSession()
    changed = s.apply(12, fetch({"a": [0]}))
    assert s.due(100.0, changed)
    assert s.take(100.0) == 1
    for t in (100.3, 100.6, 100.9):
        assert not s.due(t, s.apply(12, fetch({"a": [0]})))
    assert s.due(101.0, s.apply(12, fetch({"a": [0]})))  # a second since the last event
    assert s.take(101.0) == 4  # the three in between and this one
    assert s.due(101.1, s.apply(12, fetch({"a": [0, 1]})))  # the set changed
    assert s.take(101.1) == 1


def test_odd_bodies_cost_nothing_but_their_odd_parts() -> None:
    s = FetchSession()
    body: dict[str, Any] = {"session_epoch": "x", "topics": [
        None, {"topic": 5, "partitions": [{"partition": 0}]},
        {"topic": "a", "partitions": [{"partition": "1"}, {"partition": 2}, 7]}],
        "forgotten_topics_data": "nope"}
    assert s.apply(12, body)
    assert s.partitions() == {"a": [2]}
    assert s.session_epoch == -1


_TOPICS = st.sampled_from(["a", "b", uuid.UUID(int=7), uuid.UUID(int=8)])
_REQUEST = st.fixed_dictionaries({
    "session_id": st.integers(-5, 100),
    "session_epoch": st.integers(-3, 50),
    "topics": st.lists(st.tuples(_TOPICS, st.lists(st.integers(0, 30), max_size=8)),
                       max_size=4),
    "forgotten_topics_data": st.lists(
        st.tuples(_TOPICS, st.lists(st.integers(0, 30), max_size=8)), max_size=4),
})


@given(requests=st.lists(st.tuples(st.integers(0, 15), _REQUEST), max_size=30),
       bound=st.integers(1, 40))
@settings(max_examples=200, deadline=None)
def test_any_request_sequence_keeps_the_set_consistent_and_bounded(
        requests: list[tuple[int, dict[str, Any]]], bound: int) -> None:
    s = FetchSession(max_partitions=bound)
    for version, raw in requests:
        by_id = version >= 13
        key = "topic_id" if by_id else "topic"
        body = {**raw,
                "topics": [{key: t, "partitions": [{"partition": p} for p in ps]}
                           for t, ps in raw["topics"]],
                "forgotten_topics_data": [{key: t, "partitions": ps}
                                          for t, ps in raw["forgotten_topics_data"]]}
        before = s.partitions()
        changed = s.apply(version, body)
        after = s.partitions()
        assert changed == (after != before)
        assert s.count == sum(len(v) for v in after.values()) <= bound
        if version < 7 or raw["session_epoch"] <= 0:  # a full request: only what it lists
            listed = {p for _, ps in raw["topics"] for p in ps}
            assert all(set(v) <= listed for v in after.values())
