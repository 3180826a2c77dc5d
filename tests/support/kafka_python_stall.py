"""kafka-python 3.0.12's start-up stall, one definition for the tests that must tell it apart.

It needs no proxy and no fault: on a just-created topic the client joins twice within a
fraction of a second (the first assignment empty, the topic's metadata not in yet), the broker
completes the second generation with the partitions, and the client never reports them
assigned; its heartbeats stop and the broker expires the member a session timeout later. The
published matrix shows it in 13 of 218 kafka-python runs (README, "Read with it"). A test about
something else runs such a run once more and fails on a second stall.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def stalled_at_start(client: str, events: Iterable[dict[str, Any]]) -> bool:
    """True when `client` is kafka-python and its harness events show no partitions assigned
    and no record consumed: the stall's signature as the harness reports it."""
    progressed = [e for e in events if e.get("event") == "record"
                  or (e.get("event") == "assigned" and e.get("partitions"))]
    return client == "kafka-python" and not progressed
