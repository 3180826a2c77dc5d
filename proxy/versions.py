"""ApiVersions clamping (invariant 4): never let a client negotiate a version the proxy must
decode but cannot.

For every API the proxy decodes (address-carrying responses, ApiVersions itself and the
coordination APIs handed to observers) the advertised max becomes min(broker max, codec max).
Produce and Fetch are capped below the versions whose responses carry NodeEndpoints (Produce
v10+, Fetch v16+, KIP-951): with those versions a broker could hand the client a real address
inside a NOT_LEADER error, and rewriting it would mean decoding every Produce/Fetch response,
the proxy's whole hot path. Clients lose only the KIP-951 shortcut (they refresh Metadata
instead, as they did before 3.7). DescribeQuorum is capped below v2, whose response lists the
KRaft controllers' endpoints (`nodes[].listeners[]`): those are controller listeners, not the
broker listeners the proxy fronts, and a proxy listener is per node id (a combined-mode node has
one id for both), so there is nothing correct to rewrite them to; clients lose only that
listing (Admin `describeMetadataQuorum` still returns voters, observers and the leader).
Every other API keeps the broker's range untouched.
"""

from __future__ import annotations

import struct
from typing import Any

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.codec import ApiKey, ErrorCode
from kafka_chaos_proxy.proxy.roles import DECODED_API_KEYS, VERSION_CAPS

API_VERSIONS = ApiKey.API_VERSIONS
UNSUPPORTED_VERSION = ErrorCode.UNSUPPORTED_VERSION

__all__ = ["DECODED_API_KEYS", "VERSION_CAPS", "clamp_api_versions_response", "clamp_range"]

_I16 = struct.Struct(">h")


def clamp_range(api_key: int, broker_min: int, broker_max: int) -> tuple[int, int] | None:
    """The range to advertise for one API; None drops the API from the response (the codec
    knows none of the broker's versions of an API the proxy must decode)."""
    cap = VERSION_CAPS.get(api_key)
    if api_key not in DECODED_API_KEYS and cap is None:
        return broker_min, broker_max
    new_max = broker_max
    if cap is not None:
        new_max = min(new_max, cap)
    if api_key in DECODED_API_KEYS:
        try:
            cmin, cmax = codec.supported_versions(api_key)
        except Exception:
            return None
        new_max = min(new_max, cmax)
        if new_max < max(broker_min, cmin):
            return None
    if new_max < broker_min:
        return None
    return broker_min, new_max


def clamp_body(body: dict[str, Any]) -> bool:
    """Clamp the `api_keys` list of a decoded ApiVersions response in place; True if changed."""
    changed = False
    kept: list[dict[str, Any]] = []
    for entry in body.get("api_keys") or []:
        rng = clamp_range(entry["api_key"], entry["min_version"], entry["max_version"])
        if rng is None:
            changed = True
            continue
        if rng[1] != entry["max_version"]:
            entry["max_version"] = rng[1]
            changed = True
        kept.append(entry)
    body["api_keys"] = kept
    return changed


def clamp_api_versions_response(api_version: int, frame: bytes) -> bytes | None:
    """Rewrite a whole ApiVersions response frame (size prefix included); None if unchanged.

    ApiVersions responses always use header v0 (4 bytes). A broker that does not support the
    requested version answers UNSUPPORTED_VERSION in the v0 layout, so that case decodes and
    re-encodes as v0.
    """
    body = memoryview(frame)[8:]
    version = api_version
    if len(body) >= 2 and _I16.unpack_from(body, 0)[0] == UNSUPPORTED_VERSION:
        version = 0
    decoded = codec.decode_body(API_VERSIONS, version, codec.Direction.RESPONSE, body)
    if not clamp_body(decoded):
        return None
    payload = bytes(frame[4:8]) + codec.encode_body(
        API_VERSIONS, version, codec.Direction.RESPONSE, decoded)
    return struct.pack(">i", len(payload)) + payload
