"""The pytest plugin as a user's suite meets it, run in an inner pytest (`pytester`, in a
subprocess, the plugin loaded by its entry point as in any install) against the session's
broker (KAFKA_BOOTSTRAP_SERVERS, the provider's first choice): a failing test's report shows
that test's coordination events with the injected one, passing tests and tests without the
plugin's fixtures get nothing, the `chaos` marker plays a catalog scenario during the test,
an `async def` test (pytest-asyncio) uses `async_chaos_proxy`."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

CONSUMER = '''
import time
import uuid

import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic


def new_topic(bootstrap, name=None):
    name = name or "plugin-" + uuid.uuid4().hex[:8]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    admin.close()
    return name


def join(bootstrap, topic, group, records=0):
    """A kafka-python member of `group` until it owns partitions and got `records`."""
    consumer = KafkaConsumer(topic, group_id=group, bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest")
    got, deadline = 0, time.monotonic() + 60
    while (not consumer.assignment() or got < records) and time.monotonic() < deadline:
        got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
    consumer.close()
    return got
'''

FAILING = CONSUMER + '''

def test_fails_after_a_fault(kafka_broker, chaos_proxy):
    topic = new_topic(kafka_broker.bootstrap)
    chaos_proxy.fault(api="SyncGroup", group=topic).error("NOT_COORDINATOR", times=1)
    join(chaos_proxy.bootstrap, topic, topic)
    chaos_proxy.events.wait(api="SyncGroup", group=topic, injected=True)
    assert False, "the test's own failure"


def test_passes_with_the_rule_of_the_test_before_gone(chaos_proxy):
    assert chaos_proxy.rules() == [] and chaos_proxy.events.list() == []


def test_fails_without_the_plugins_fixtures():
    assert False, "nothing of the proxy here"
'''

MARKED = CONSUMER + '''
TOPIC = "plugin-marked-" + uuid.uuid4().hex[:8]


@pytest.mark.chaos(scenario="syncgroup-not-coordinator", topic=TOPIC)
def test_the_marker_plays_the_scenario(kafka_broker, chaos_proxy, chaos_scenario):
    assert [r["id"] for r in chaos_proxy.rules()] == ["syncgroup-not-coordinator-1"]
    new_topic(kafka_broker.bootstrap, TOPIC)
    # The scenario's second step produces 30 records once its fault fired.
    assert join(chaos_proxy.bootstrap, TOPIC, TOPIC, records=30) >= 30
    event = chaos_proxy.events.wait(api="SyncGroup", group=TOPIC, injected=True)
    assert event["fault"]["rule"] == "syncgroup-not-coordinator-1"
    result = chaos_scenario.wait(30)
    assert [step.fired for step in result.steps] == [True, True], str(result)


@pytest.mark.chaos("no-such-scenario")
def test_an_unknown_scenario_is_an_error(chaos_proxy):
    pass


def test_after_the_marked_tests_nothing_is_left(chaos_proxy):
    assert chaos_proxy.rules() == []


@pytest.mark.asyncio
async def test_an_async_test_awaits_the_same_calls(kafka_broker, async_chaos_proxy):
    from aiokafka import AIOKafkaConsumer

    topic = new_topic(kafka_broker.bootstrap)
    chaos = async_chaos_proxy
    async with chaos.fault(api="SyncGroup", group=topic).error("NOT_COORDINATOR",
                                                               times=1) as fault:
        consumer = AIOKafkaConsumer(topic, group_id=topic, bootstrap_servers=chaos.bootstrap)
        await consumer.start()
        try:  # the consumer joins on this loop while the wait is awaited
            event = await chaos.events.wait(api="SyncGroup", group=topic, injected=True,
                                            timeout=30)
        finally:
            await consumer.stop()
        assert event["fault"]["rule"] == fault.id and await fault.injections() == 1
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
          kafka_bootstrap: str) -> pytest.Pytester:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.delenv("KCP_KAFKA_PROVIDER", raising=False)
    pytester.makeini("[pytest]\nasyncio_mode = strict\n")  # its own config, none above it
    return pytester


def test_a_failing_test_reports_its_coordination_events(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_user=FAILING)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert out.count("kafka-chaos-proxy coordination events") == 1
    section = out.split("kafka-chaos-proxy coordination events", 1)[1]
    section = section.split("test_fails_without_the_plugins_fixtures", 1)[0]
    assert re.search(r"events since the test began \(after seq \d+\):", section)
    assert re.search(r"SyncGroupv\d+ group=plugin-\w+ .*-> NOT_COORDINATOR "
                     r"\(error_injected\) \[fault \S+: error\]", section), section
    assert re.search(r"JoinGroupv\d+ group=plugin-\w+", section)
    assert "rules installed: 1" in section and "injected 1)" in section


def test_the_marker_plays_a_scenario_and_async_tests_work(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_marked=MARKED)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-rE")
    result.assert_outcomes(passed=3, errors=1)
    assert "no scenario 'no-such-scenario' in the catalog" in result.stdout.str()


def test_the_marker_is_registered(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.chaos(scenario, *kafka-chaos-proxy scenario*"])
