"""The proxy's own requests to a broker: removing a member so that the broker agrees with a fault.

Why it exists: a broker-consistent fault (`error` with `broker_consistent`, see
`faults.actions.error`) tells a client UNKNOWN_MEMBER_ID only once the broker really has
forgotten the member. That takes a request the client never sent, and it cannot travel on the
client's own upstream connection: it would take a correlation id the client did not choose and
put a response into that connection's FIFO of in-flight requests (invariant 2). So it gets a
short connection of its own: connect, ApiVersions (once per broker address, cached), the one
request, close. Every exchange is bounded in time (`timeout_s`) and in response size
(`MAX_RESPONSE_BYTES`), and nothing here raises into the caller: a broker that refuses the
connection, times out, closes it or answers garbage gives a `SideChannelResult` with a
`reason`, never an exception.

Against a secured cluster (`Access`): the connection is TLS with the proxy's upstream context
(SNI: the broker's host), and logs in with the proxy's own credentials (`--upstream-sasl-*`,
`proxy.sasl_login`) when it has some. Without them a broker that requires SASL closes the
connection, and the result's reason says to give them: clients' own SASL exchanges are
never borrowed (the proxy never learns their secrets).

Who may import it: the fault executors of the data plane (`proxy.pipeline.executors.error`;
the architecture test lists it among the few modules the pipeline may reach) and tests. It
imports only `codec`, the proxy's own login and TLS error counting, and the standard library,
never the pipeline, so it cannot reach into a client connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.sasl_login import SaslLoginError, login
from kafka_chaos_proxy.proxy.tls import errors as tls_errors
from kafka_chaos_proxy.proxy.tls.settings import UpstreamSasl

__all__ = [
    "CLIENT_ID",
    "MAX_RESPONSE_BYTES",
    "Access",
    "SideChannelResult",
    "leave_consumer_group",
    "remove_member",
]

CLIENT_ID = "kafka-chaos-proxy"
DEFAULT_TIMEOUT_S = 5.0
# ApiVersions, LeaveGroup and ConsumerGroupHeartbeat answers are a few KiB at most; a size
# prefix beyond this is not believed (nothing is allocated from an untrusted length).
MAX_RESPONSE_BYTES = 1 << 20
# Broker addresses whose ApiVersions are remembered; there are as many as brokers, bounded
# all the same (oldest forgotten first).
VERSIONS_CACHE_SIZE = 256
LEAVE_REASON = "kafka-chaos-proxy: broker-consistent UNKNOWN_MEMBER_ID fault"

API_VERSIONS = ApiKey.API_VERSIONS
LEAVE_GROUP = ApiKey.LEAVE_GROUP
CONSUMER_GROUP_HEARTBEAT = ApiKey.CONSUMER_GROUP_HEARTBEAT
# LeaveGroup v3 (KIP-345) names members in a list and can name a static member's instance id.
_LEAVE_GROUP_MIN = 3
_LEAVE_EPOCH = -1  # ConsumerGroupHeartbeat: the member leaves the group (KIP-848)

_I32 = struct.Struct(">i")

Address = tuple[str, int]
_ErrorOf = Callable[[dict[str, Any]], int]  # an answer's error code
_versions: OrderedDict[Address, dict[int, tuple[int, int]]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class SideChannelResult:
    """What the broker said, or why it said nothing.

    `error` is the broker's error name (None for NONE, and when there was no answer); `reason`
    is set only when there was no usable answer (refused, timed out, closed, unparseable, no
    common version). `latency_s` covers the whole exchange, connecting included.
    """

    api: str
    error: str | None
    latency_s: float
    reason: str | None = None
    version: int | None = None

    @property
    def answered(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Access:
    """How the side channel reaches a secured broker: TLS with this context (None:
    plaintext), and the proxy's own SASL login (None: none)."""

    tls: ssl.SSLContext | None = None
    sasl: UpstreamSasl | None = None


PLAIN_ACCESS = Access()
SASL_HINT = ("a broker that requires SASL closes connections that do not log in: give the "
             "proxy its own login with --upstream-sasl-mechanism, --upstream-sasl-username and "
             "--upstream-sasl-password-file")


class _Unusable(Exception):
    """The broker's answer cannot be used; the message is the result's `reason`."""


async def remove_member(address: Address, group_id: str, member_id: str,
                        group_instance_id: str | None = None, *,
                        timeout_s: float = DEFAULT_TIMEOUT_S,
                        access: Access = PLAIN_ACCESS) -> SideChannelResult:
    """Remove one member of a classic group at the broker at `address` (LeaveGroup v3+ naming
    it, with its instance id when it is a static member). A member the broker does not know
    gives error UNKNOWN_MEMBER_ID."""
    member = {"member_id": member_id, "group_instance_id": group_instance_id,
              "reason": LEAVE_REASON}
    body = {"group_id": group_id, "members": [member]}
    return await _exchange(address, LEAVE_GROUP, _LEAVE_GROUP_MIN, body, _leave_group_error,
                           timeout_s, access)


async def leave_consumer_group(address: Address, group_id: str, member_id: str, *,
                               timeout_s: float = DEFAULT_TIMEOUT_S,
                               access: Access = PLAIN_ACCESS) -> SideChannelResult:
    """Make a member of a KIP-848 consumer group leave it, at the broker at `address` (the
    leave heartbeat: ConsumerGroupHeartbeat with member epoch -1)."""
    body = {"group_id": group_id, "member_id": member_id, "member_epoch": _LEAVE_EPOCH}
    return await _exchange(address, CONSUMER_GROUP_HEARTBEAT, 0, body, _top_level_error,
                           timeout_s, access)


def forget_versions() -> None:
    """Drop every cached ApiVersions answer (for tests, and a broker upgraded in place)."""
    _versions.clear()


# --------------------------------------------------------------------------- the exchange


def _top_level_error(body: dict[str, Any]) -> int:
    return int(body.get("error_code", 0))


def _leave_group_error(body: dict[str, Any]) -> int:
    """LeaveGroup v3+: a request-level error, else the (one) member's."""
    code = _top_level_error(body)
    if code:
        return code
    for member in body.get("members") or ():
        if member.get("error_code"):
            return int(member["error_code"])
    return 0


async def _open_channel(address: Address, access: Access) -> _Channel:
    """A connection of ours to the broker at `address`: TLS when `access` says so (SNI: its
    host), not yet logged in."""
    if access.tls is None:
        reader, writer = await asyncio.open_connection(address[0], address[1])
    else:
        reader, writer = await asyncio.open_connection(
            address[0], address[1], ssl=access.tls, server_hostname=address[0])
    return _Channel(reader, writer)


async def _exchange(address: Address, api_key: int, min_version: int, body: dict[str, Any],
                    error_of: _ErrorOf, timeout_s: float,
                    access: Access = PLAIN_ACCESS) -> SideChannelResult:
    api = codec.api_name(api_key)
    loop = asyncio.get_running_loop()
    started = loop.time()
    version: int | None = None
    try:
        async with asyncio.timeout(timeout_s):
            channel = await _open_channel(address, access)
            try:
                ranges = await _ranges(channel, address)
                if access.sasl is not None:
                    await login(channel.call, access.sasl, ranges)
                version = _pick_version(ranges, address, api_key, min_version)
                answer = await channel.call(api_key, version, body)
            finally:
                channel.writer.close()
        code = error_of(answer)
    except TimeoutError:
        reason = f"no answer from {_show(address)} within {timeout_s:g} s"
    except ssl.SSLError as exc:  # before OSError, its base
        tls_reason = tls_errors.classify(exc)
        tls_errors.record(tls_errors.UPSTREAM, tls_reason, broker=_show(address),
                          via="side_channel", detail=tls_errors.detail_of(exc))
        reason = f"TLS to {_show(address)} failed ({tls_reason}): {tls_errors.detail_of(exc)}"
    except OSError as exc:
        reason = f"cannot reach {_show(address)}: {exc.strerror or exc}"
    except asyncio.IncompleteReadError:
        reason = f"{_show(address)} closed the connection before answering"
        if access.sasl is None:
            reason += f" ({SASL_HINT})"
    except SaslLoginError as exc:
        reason = f"cannot log in to {_show(address)}: {exc}"
    except _Unusable as exc:
        reason = str(exc)
    except Exception as exc:  # a codec bug or a hostile answer: still never the caller's problem
        reason = f"unusable answer from {_show(address)}: {type(exc).__name__}: {exc}"
    else:
        return SideChannelResult(api, _error_name(code), loop.time() - started, version=version)
    _versions.pop(address, None)  # the broker may have changed; ask again next time
    return SideChannelResult(api, None, loop.time() - started, reason=reason, version=version)


class _Channel:
    """One short connection of ours: requests in turn, each answer checked and bounded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.correlation_id = 0

    async def call(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        self.correlation_id += 1
        sent = self.correlation_id
        payload = codec.encode_request((api_key, version, sent, CLIENT_ID), body)
        self.writer.write(_I32.pack(len(payload)) + payload)
        await self.writer.drain()
        (size,) = _I32.unpack(await self.reader.readexactly(4))
        if not 0 < size <= MAX_RESPONSE_BYTES:
            raise _Unusable(f"{codec.api_name(api_key)} response size {size} outside "
                            f"1..{MAX_RESPONSE_BYTES}")
        frame = await self.reader.readexactly(size)
        got, answer = codec.decode_response(frame, api_key, version)
        if got != sent:
            raise _Unusable(f"correlation id {got} in answer to {sent}")
        return answer


async def _ranges(channel: _Channel, address: Address) -> dict[int, tuple[int, int]]:
    """The broker's ApiVersions ranges, asked once per address (a broker answers
    ApiVersions before any SASL login)."""
    ranges = _versions.get(address)
    if ranges is None:
        answer = await channel.call(API_VERSIONS, 0, {})
        if answer.get("error_code"):
            raise _Unusable(f"ApiVersions answered {_error_name(answer['error_code'])}")
        ranges = {int(e["api_key"]): (int(e["min_version"]), int(e["max_version"]))
                  for e in answer.get("api_keys") or ()}
        _versions[address] = ranges
        while len(_versions) > VERSIONS_CACHE_SIZE:
            _versions.popitem(last=False)
    else:
        # Proxies on other threads' loops (embedded, in tests) share the cache: the entry may
        # be gone by now, which only costs its place in the order.
        with contextlib.suppress(KeyError):
            _versions.move_to_end(address)
    return ranges


def _pick_version(ranges: dict[int, tuple[int, int]], address: Address, api_key: int,
                  min_version: int) -> int:
    """The highest version of `api_key` that both the codec and the broker support (and at
    least `min_version`)."""
    api = codec.api_name(api_key)
    if api_key not in ranges:
        raise _Unusable(f"{_show(address)} does not offer {api}")
    lo, hi = ranges[api_key]
    codec_lo, codec_hi = codec.supported_versions(api_key)
    version = min(hi, codec_hi)
    if version < max(lo, codec_lo, min_version):
        raise _Unusable(f"no {api} version >= {min_version} in common with {_show(address)} "
                        f"(broker {lo}..{hi}, proxy {codec_lo}..{codec_hi})")
    return version


def _error_name(code: int) -> str | None:
    if code == 0:
        return None
    try:
        return codec.error_name(code)
    except Exception:
        return str(code)


def _show(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
