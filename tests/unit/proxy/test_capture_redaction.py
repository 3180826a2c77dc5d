"""`run --capture` never writes SASL secrets: SaslAuthenticate auth bytes are replaced in both
directions, the rest of the frame kept, and a frame that cannot be decoded is left out."""

from __future__ import annotations

from pathlib import Path

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.proxy.capture import FrameCapture, read_capture
from tests.support.wire_fakes import request_frame, response_frame

SASL_AUTHENTICATE = 36


def test_sasl_authenticate_bytes_are_redacted_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "c.kcpcap"
    capture = FrameCapture(path)
    secret = b"\x00alice\x00alice-secret"
    for version in (0, 1, 2):
        capture.request(1, SASL_AUTHENTICATE, version,
                        request_frame(SASL_AUTHENTICATE, version, 7, {"auth_bytes": secret}))
        capture.response(1, SASL_AUTHENTICATE, version, response_frame(
            SASL_AUTHENTICATE, version, 7, {"error_code": 0, "auth_bytes": b"v=serverproof"}))
    capture.request(1, SASL_AUTHENTICATE, 2, b"\x00\x00\x00\x02ab")  # undecodable: left out
    capture.close()
    raw = path.read_bytes()
    assert b"alice-secret" not in raw and b"serverproof" not in raw
    frames = list(read_capture(path))
    assert len(frames) == 6
    for frame in frames:
        view = memoryview(frame.frame)[4:]
        if frame.direction == 0:
            hsize = codec.parse_request_header(view).header_size
            assert hsize is not None
            kind = codec.Direction.REQUEST
        else:
            _, hsize = codec.parse_response_header(view, SASL_AUTHENTICATE, frame.api_version)
            kind = codec.Direction.RESPONSE
        body = codec.decode_body(SASL_AUTHENTICATE, frame.api_version, kind, view[hsize:])
        assert body["auth_bytes"].startswith(b"[redacted: ")
    assert frames[0].frame[8:12] == b"\x00\x00\x00\x07"  # the header is kept: corr id 7
