"""What a connection needs of the server that accepted it: the `ProxyHost` protocol.

`proxy.server.ProxyServer` satisfies it structurally. The pipeline never imports the server, so
the server can import the pipeline without a cycle, and the pipeline's own view of its host is
written down in one place.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from kafka_chaos_proxy.faults.decision import FaultDecider, RequestView
from kafka_chaos_proxy.proxy.config import ProxyConfig
from kafka_chaos_proxy.proxy.exchange import ExchangeObserver
from kafka_chaos_proxy.proxy.fetch_sessions import FetchSample, TopicNames

# transform(api_version, frame) -> new frame, or None when unchanged (`proxy.rewrite.Transform`)
ResponseTransform = Callable[[int, bytes], "bytes | None"]

# Where the pipeline hands Fetch samples (the server makes events of them).
FetchSink = Callable[[FetchSample], object]

ConnT = TypeVar("ConnT", contravariant=True)


class FrameTap(Protocol):
    """Where `run --capture` frames go (`proxy.capture.FrameCapture`). The server hands it to
    each connection it accepts, as `capture`, only when capturing: so the pipeline pays one
    attribute check per frame otherwise, and never imports the writer."""

    def request(self, conn_id: int, api_key: int, api_version: int, frame: bytes) -> None:
        """A whole request frame as the client sent it."""

    def response(self, conn_id: int, api_key: int, api_version: int, frame: bytes) -> None:
        """A whole response frame as the broker sent it."""


class HoldParking(Protocol):
    """Where holds wait (`proxy.holds.HoldRegistry`), as the pipeline sees it."""

    def park(self, *, rule_id: str | None, connection: int, api: str | None,
             correlation_id: int, plan: Any, resume: Callable[[], None],
             expire: Callable[[], None]) -> object: ...


class TriggerHooks(Protocol):
    """Where the pipeline reports coordination requests for in-proxy triggers, and parks
    holds (`proxy.trigger_feed.TriggerFeed`): before a request is decided and after its
    decision was carried out."""

    def request_arrived(self, request: RequestView) -> None: ...

    def request_dispatched(self, request: RequestView) -> None: ...

    @property
    def holds(self) -> HoldParking: ...


class ProxyHost(Protocol[ConnT]):
    """The server as a connection sees it.

    Generic in the connection type only so that `register`/`unregister` can name what they
    take without this module importing the connection.
    """

    @property
    def config(self) -> ProxyConfig: ...

    @property
    def decider(self) -> FaultDecider | None: ...

    @property
    def observers(self) -> Sequence[ExchangeObserver]: ...

    @property
    def triggers(self) -> TriggerHooks | None: ...

    @property
    def fetch_sink(self) -> FetchSink | None:
        """Where Fetch sample events go (`ProxyConfig.fetch_events`); None: Fetch requests are
        not decoded at all. Read once per connection, when it is made."""
        ...

    @property
    def topic_names(self) -> TopicNames:
        """Topic id -> name for the Fetch sample events, learned from Metadata answers."""
        ...

    @property
    def response_transforms(self) -> Mapping[int, ResponseTransform]:
        """Rewriters by API key (`proxy.rewrite`): responses that may carry broker addresses."""
        ...

    @property
    def client_tls(self) -> ssl.SSLContext | None:
        """The context every listener serves TLS with; None: plaintext listeners."""
        ...

    @property
    def upstream_tls(self) -> ssl.SSLContext | None:
        """The context of connections to brokers (SNI: the broker's host); None: plaintext."""
        ...

    def quiet_api_keys(self, client_id: str | None) -> frozenset[int]:
        """API keys the decider would answer PASS for, for a request from `client_id`
        whatever else it holds (no rule can match them); empty when the decider cannot say
        (it must then see every request). The same object until the rules change:
        connections compare it by identity."""
        ...

    def next_connection_id(self) -> int: ...

    def register(self, conn: ConnT) -> tuple[str, str] | None:
        """Admit a connection just accepted; or (reason, detail) of its refusal, over a
        connection limit (`proxy.pipeline.limits`), in which case it is not registered."""
        ...

    def unregister(self, conn: ConnT) -> None: ...

    def upstream_candidates(self, node_id: int) -> list[tuple[str, int]]:
        """Broker addresses to try, in order, for a client of the listener of `node_id`."""
        ...
