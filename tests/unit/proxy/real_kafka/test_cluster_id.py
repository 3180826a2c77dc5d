"""The local broker's cluster id must be one the storage tool accepts as an argument."""

from __future__ import annotations

import base64
from collections.abc import Iterator

from kafka_chaos_proxy.proxy.real_kafka.kraft import new_cluster_id


def test_cluster_id_is_16_bytes_of_unpadded_urlsafe_base64() -> None:
    cluster_id = new_cluster_id()
    assert "=" not in cluster_id
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_an_id_starting_with_a_dash_is_drawn_again() -> None:
    # 0xf8 encodes to "-" as the first URL-safe base64 character; the second draw does not.
    draws: Iterator[bytes] = iter([b"\xf8" + bytes(15), bytes(16)])
    cluster_id = new_cluster_id(lambda n: next(draws))
    assert not cluster_id.startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(bytes(16)).decode().rstrip("=")
