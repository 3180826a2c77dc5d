"""Kafka error names and codes (from errors.tsv, embedded in the generated schema)."""

from __future__ import annotations

from kafka_chaos_proxy.codec.errors import UnknownErrorCodeError
from kafka_chaos_proxy.codec.schema import ERROR_CODES

_BY_CODE: dict[int, str] = {code: name for name, code in ERROR_CODES.items()}


def error_name(code: int) -> str:
    """Name for a code; unknown codes render as UNKNOWN_ERROR_<code> rather than failing,
    because brokers newer than the specs may send codes we have never seen."""
    return _BY_CODE.get(code, f"UNKNOWN_ERROR_{code}")


def error_label(code: object) -> str:
    """The one spelling of an error code in logs, events, metrics and the CLI; never raises,
    whatever it is handed (a broker may send a code newer than the specs)."""
    if isinstance(code, int) and not isinstance(code, bool):
        return error_name(code)
    return f"UNKNOWN_ERROR_{code}"


def error_code(name_or_code: str | int) -> int:
    """Accepts 25, "25", "UNKNOWN_MEMBER_ID", "unknown_member_id", "UnknownMemberId"."""
    if isinstance(name_or_code, int) and not isinstance(name_or_code, bool):
        if name_or_code in _BY_CODE:
            return name_or_code
    elif isinstance(name_or_code, str):
        text = name_or_code.strip()
        if text.lstrip("-").isdigit() and int(text) in _BY_CODE:
            return int(text)
        upper = text.upper().replace("-", "_")
        if upper in ERROR_CODES:
            return ERROR_CODES[upper]
        squashed = {n.replace("_", ""): c for n, c in ERROR_CODES.items()}
        if upper.replace("_", "") in squashed:
            return squashed[upper.replace("_", "")]
    raise UnknownErrorCodeError(
        f"unknown Kafka error {name_or_code!r}; see ERROR_CODES for valid names")
