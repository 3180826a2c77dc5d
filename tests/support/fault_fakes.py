"""Test doubles for the two things the engine reads from outside: requests and time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeView:
    """A `RequestView` whose body() counts calls, to prove when the engine decodes."""

    api_key: int
    api_version: int = 0
    connection_id: int = 1
    client_host: str = "127.0.0.1"
    broker_node: int = 1
    correlation_id: int = 1
    client_id: str | None = "client-1"
    principal: str | None = None
    decoded: dict[str, Any] | None = field(default_factory=dict)
    body_calls: int = 0

    def body(self) -> dict[str, Any] | None:
        self.body_calls += 1
        return self.decoded


class FakeClock:
    """Seconds that advance only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1000.0
