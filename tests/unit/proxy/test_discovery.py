"""Start-up discovery does not believe an upstream's size prefix beyond its bound."""

from __future__ import annotations

import asyncio
import struct
import tracemalloc

import pytest

from kafka_chaos_proxy.proxy.discovery import MAX_RESPONSE_BYTES, DiscoveryError, fetch_brokers


async def test_a_gigabyte_size_prefix_is_refused_without_allocating() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(struct.pack(">i", 1_100_000_000) + b"\0" * 64)  # claims 1.1 GB
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tracemalloc.start()
    try:
        with pytest.raises(DiscoveryError, match=f"outside 0..{MAX_RESPONSE_BYTES}"):
            await fetch_brokers("127.0.0.1", port, timeout_s=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        server.close()
        await server.wait_closed()
    assert peak < 8 * 1024 * 1024
