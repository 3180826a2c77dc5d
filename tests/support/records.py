"""Records that carry their own checksum, and the verdict on what a consumer got back.

Each value is `seq:payload:crc32`, so a consumer can prove a record is unaltered; keys spread
records over partitions so per-partition order can be checked against production order.
"""

from __future__ import annotations

import zlib
from collections import defaultdict

PARTITIONS = 6


def key(seq: int) -> bytes:
    return f"k{seq % 97}".encode()


def value(seq: int, size: int = 64) -> bytes:
    payload = (f"{seq:08d}" * (size // 8 + 1))[:size]
    body = f"{seq}:{payload}"
    return f"{body}:{zlib.crc32(body.encode()):08x}".encode()


def check(raw: bytes) -> int:
    """The sequence number of an intact record; AssertionError if it was altered."""
    text = raw.decode()
    body, _, crc = text.rpartition(":")
    assert f"{zlib.crc32(body.encode()):08x}" == crc, f"checksum mismatch: {text[:60]}"
    return int(body.split(":", 1)[0])


class Tally:
    def __init__(self) -> None:
        self.by_partition: dict[int, list[int]] = defaultdict(list)
        self.count = 0

    def add(self, partition: int, raw_key: bytes | None, raw_value: bytes) -> None:
        seq = check(raw_value)
        assert raw_key == key(seq)
        self.by_partition[partition].append(seq)
        self.count += 1

    def verify(self, n: int) -> None:
        seen = [s for seqs in self.by_partition.values() for s in seqs]
        assert len(seen) == n, f"consumed {len(seen)} records, produced {n}"
        assert sorted(seen) == list(range(n)), "records lost or duplicated"
        for partition, seqs in self.by_partition.items():
            assert seqs == sorted(seqs), f"order broken in partition {partition}"
