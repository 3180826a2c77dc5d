"""What the proxy does with each API, in one place: the facts every other module reads.

Three roles decide how a frame is handled. Coordination APIs are decoded both ways for the
observers (event log, group state, metrics); rewritten APIs carry broker addresses or version
ranges and are decoded to be changed (invariants 3 and 4); capped APIs are negotiated below
the versions the proxy cannot rewrite. Anything else is pass-through. The rewritten set is
derived from the rewrite table itself, so a new rewriter cannot be forgotten here.

Imports: `codec` and `proxy.rewrite` (pure tables) only.
"""

from __future__ import annotations

from kafka_chaos_proxy.codec import ApiKey
from kafka_chaos_proxy.proxy.rewrite import ADDRESS_REWRITERS

COORDINATION_API_KEYS: frozenset[int] = frozenset({
    ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, ApiKey.LEAVE_GROUP,
    ApiKey.OFFSET_COMMIT, ApiKey.OFFSET_FETCH, ApiKey.FIND_COORDINATOR,
    ApiKey.DESCRIBE_GROUPS, ApiKey.LIST_GROUPS, ApiKey.CONSUMER_GROUP_HEARTBEAT,
    ApiKey.SHARE_GROUP_HEARTBEAT,
})

# Responses decoded to be changed: the address rewriters, and ApiVersions (clamped).
REWRITTEN_API_KEYS: frozenset[int] = frozenset(ADDRESS_REWRITERS) | {ApiKey.API_VERSIONS}

# Produce, Fetch: the last versions without NodeEndpoints in the response (KIP-951);
# DescribeQuorum: the last version without controller endpoints (see `proxy.versions`).
VERSION_CAPS: dict[int, int] = {
    ApiKey.PRODUCE: 9,
    ApiKey.FETCH: 15,
    ApiKey.DESCRIBE_QUORUM: 1,
}

# Every API whose bodies the proxy must be able to decode: ApiVersions never offers clients a
# version of these that the codec does not know.
DECODED_API_KEYS: frozenset[int] = REWRITTEN_API_KEYS | COORDINATION_API_KEYS
