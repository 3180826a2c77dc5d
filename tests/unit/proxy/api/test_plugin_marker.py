"""The `chaos` marker's arguments, read as `ChaosProxy.start_scenario` takes them; a marker
that says something else is a usage error naming what it got."""

from __future__ import annotations

import pytest

from kafka_chaos_proxy.proxy.pytest_plugin import _scenario_of


def test_the_scenario_by_position_or_keyword_and_its_options() -> None:
    assert _scenario_of(pytest.mark.chaos("s-1").mark) == ("s-1", {})
    assert _scenario_of(pytest.mark.chaos(scenario="s-1", topic="t", duration_s=5).mark) == (
        "s-1", {"topic": "t", "duration_s": 5})


@pytest.mark.parametrize("mark", [pytest.mark.chaos(), pytest.mark.chaos("a", "b"),
                                  pytest.mark.chaos("a", scenario="b"),
                                  pytest.mark.chaos("a", topc="t")])
def test_anything_else_is_a_usage_error(mark: pytest.MarkDecorator) -> None:
    with pytest.raises(pytest.UsageError, match="chaos\\(scenario"):
        _scenario_of(mark.mark)
