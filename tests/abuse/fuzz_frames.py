"""A coverage-guided fuzz target (atheris / libFuzzer) for the framing and the codec: the two
places every byte a client or broker sends goes through first (invariant 5: malformed input
closes one connection, it never crashes the process or makes it allocate from a length it
was told).

One input is a 5-byte prefix and a byte stream: byte 0 seeds how the stream is cut into
chunks, bytes 1-4 are the api key and version (int16 each) to decode frames as responses
of. The stream goes to `FrameReader.feed` in those chunks; each complete frame goes to
`codec.parse_request_header`, `codec.decode_request`, and `codec.decode_response` (as a
response to the prefix's api/version and to the frame's own). Checked per input:

* only `codec.CodecError` (and its subclasses) and `FrameError` escape;
* the frames do not depend on the chunking (the same frames as one `feed` of the whole);
* no allocation from an untrusted length: the tracemalloc peak of one input stays under
  `PEAK_BASE + PEAK_PER_BYTE * len(input)` (caches warmed by a rerun before judging).

The seed corpus (`tests/abuse/corpus/`, real frames recorded by `capture_corpus.py`) is in
this format. `tests/abuse/test_abuse_fuzz.py` runs this for a bounded time in CI. Run it longer on
demand (new inputs go to the first directory given, so give it a scratch copy if you want the
committed corpus left alone):

    .venv/bin/python tests/abuse/fuzz_frames.py tests/abuse/corpus -max_total_time=3600

A crash leaves `crash-<sha1>` in the working directory (`-artifact_prefix=DIR/` to change);
commit it under `tests/abuse/crashes/`, where `test_abuse_fuzz.py` replays every file.
"""

from __future__ import annotations

import contextlib
import random
import struct
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["kafka_chaos_proxy.codec",
                                         "kafka_chaos_proxy.proxy.pipeline.framing"]):
    from kafka_chaos_proxy import codec
    from kafka_chaos_proxy.proxy.pipeline.framing import FrameError, FrameReader

MAX_FRAME_BYTES = 1 << 20  # small, so a huge size prefix is refused rather than awaited
PEAK_BASE = 4 << 20
PEAK_PER_BYTE = 2048  # decoded dicts and lists of tiny structs take far more than their bytes
_PREFIX = struct.Struct(">Bhh")


def _chunks(stream: bytes, seed: int) -> list[bytes]:
    if seed == 0:
        return [stream]
    rng = random.Random(seed)
    out = []
    pos = 0
    while pos < len(stream):
        step = rng.choice((1, 2, 3, 4, 5, 7, 8, 13, 64, 1000, 1 << 16))
        out.append(stream[pos:pos + step])
        pos += step
    return out


def _frames(chunks: list[bytes]) -> tuple[list[bytes], bool]:
    """Frames of the stream fed in `chunks`, and whether a FrameError ended it."""
    reader = FrameReader(MAX_FRAME_BYTES)
    frames: list[bytes] = []
    for chunk in chunks:
        try:
            frames.extend(reader.feed(chunk))
        except FrameError:
            return frames, True
        head = reader.partial()
        if head is not None:
            total, first = head
            assert total <= MAX_FRAME_BYTES + 4 and len(first) <= reader.pending
    return frames, False


def _decode(frame: bytes, api_key: int, api_version: int) -> None:
    payload = memoryview(frame)[4:]
    header = None
    try:
        header = codec.parse_request_header(payload)
        codec.decode_request(payload)
    except codec.CodecError:
        pass
    for key, version in {(api_key, api_version),
                         (header.api_key, header.api_version) if header else (0, 0)}:
        with contextlib.suppress(codec.CodecError):
            codec.decode_response(payload, key, version)


def run_one(data: bytes) -> None:
    """Everything one input is checked for, without the memory bound."""
    seed, api_key, api_version = _PREFIX.unpack(data[:5].ljust(5, b"\0"))
    stream = data[5:]
    frames, failed = _frames(_chunks(stream, seed))
    whole, whole_failed = _frames([stream])
    assert failed == whole_failed, "a FrameError depends on how the stream was chunked"
    if not failed:
        assert frames == whole, "frames depend on how the stream was chunked"
    for frame in frames:
        _decode(frame, api_key, api_version)


def _peak(data: bytes) -> int:
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    run_one(data)
    return tracemalloc.get_traced_memory()[1] - base


def test_one_input(data: bytes) -> None:
    bound = PEAK_BASE + PEAK_PER_BYTE * len(data)
    if _peak(data) > bound:  # maybe a parser built and cached on first use: once more
        peak = _peak(data)
        assert peak <= bound, f"{peak} bytes allocated for a {len(data)}-byte input"


def main() -> None:
    tracemalloc.start()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
