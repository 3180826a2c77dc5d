"""Fixtures for the fault engine tests."""

from __future__ import annotations

import pytest

from tests.support.fault_fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
