"""Which requests go upstream without a request context, and the facts their scan needs; no I/O.

Why: most requests are Produce and Fetch that nothing looks at (no rule can match their API,
no observer wants them, no answer is rewritten), and building a context, parsing the whole
header and asking the fault engine cost the pipeline more than half of its Python work per
such request. For those, `RequestPath._forward_passing` reads the size, key, version,
correlation id and client id length at fixed offsets of the received chunk (no per-frame
`bytes`), and forwards a run of them with one write. Everything else, and anything the scan
is unsure of, takes the full path, which reports malformed input as it always did.

A table maps `api_key << 16 | api_version` to the scan's `kind` bits. It holds only
versions the codec supports whose header carries a client id (header v1 or v2), and Produce
from v3 on (acks then follow the transactional id, `framing.produce_acks`). `SHAPES` is the
table of every such version (how to read a frame); `passing_table` the ones a connection's
client may pass under the current rules (whether to).
"""

from __future__ import annotations

import functools
import struct

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy.pipeline.framing import PRODUCE, FrameError, produce_acks

FLEXIBLE = 1  # header v2: a tagged-field count follows the client id
PRODUCE_ACKS = 2  # a Produce: acks=0 means no response, hence no slot

# Distinct (quiet keys, excluded keys) pairs seen: one per rule-set change of a proxy's
# lifetime in practice, since a proxy's connections share both.
TABLES_KEPT = 32


@functools.lru_cache(maxsize=TABLES_KEPT)
def passing_table(quiet: frozenset[int], excluded: frozenset[int]) -> dict[int, int]:
    """`api_key << 16 | api_version` -> kind bits, for the keys in `quiet` and not in
    `excluded`. Shared between connections (cached): read it, never change it."""
    table: dict[int, int] = {}
    for key in sorted(quiet - excluded):
        if key not in codec.API_NAMES:
            continue
        lo, hi = codec.supported_versions(key)
        for version in range(lo, hi + 1):
            header_version = codec.request_header_version(key, version)
            if header_version == 0 or (key == PRODUCE and version < 3):
                continue
            kind = FLEXIBLE if header_version == 2 else 0
            if key == PRODUCE:
                kind |= PRODUCE_ACKS
            table[key << 16 | version] = kind
    return table


# Every (key, version) the scan can read, with its kind bits: what a frame looks like is
# known before whether its client may pass (which takes its client id, read from the frame).
SHAPES: dict[int, int] = passing_table(frozenset(codec.API_NAMES), frozenset())


def passing_acks(data: bytes, body: int, end: int, api_version: int, flexible: int) -> int | None:
    """The acks of the Produce whose body starts at `body` and whose frame ends at `end`
    within `data`; None when the frame is too short or malformed for that (the full path
    then says what is wrong)."""
    try:
        return produce_acks(data, body, api_version, bool(flexible), end)
    except (FrameError, IndexError, struct.error):
        return None
