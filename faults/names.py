"""Kafka's names for APIs and errors, as users may write them and as the codec knows them.

Rules name APIs ("SyncGroup", "sync_group", 14) and errors ("NOT_COORDINATOR", 16) the way a
person remembers them; these functions turn that into the one canonical spelling, or into an
error message that says what was wrong and what to write instead. They are shared by the rule
model and by every action that carries an error, which is why they are not in `faults.model`.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from kafka_chaos_proxy import codec

# APIs listed first when an unknown API name is reported: the ones rules are usually about.
_COMMON_APIS = (
    "JoinGroup",
    "SyncGroup",
    "Heartbeat",
    "LeaveGroup",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "ConsumerGroupHeartbeat",
    "Metadata",
    "Produce",
    "Fetch",
)


# A key or code written as text ("14", "-1"); ASCII digits only, and short, so int() never fails.
_NUMBER = re.compile(r"-?[0-9]{1,9}")


def show(value: object, limit: int = 60) -> str:
    """A user's value quoted in an error message, cut short: messages stay one readable line
    even when the input was a megabyte of junk."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@lru_cache(maxsize=1)
def api_names() -> dict[int, str]:
    """API key -> Kafka message name (without "Request"), as the codec knows them."""
    table = codec.API_NAMES
    out: dict[int, str] = {}
    for k, v in table.items():
        if isinstance(k, int):
            out[k] = str(v)
        else:
            out[int(v)] = str(k)
    return dict(sorted(out.items()))


@lru_cache(maxsize=1)
def api_keys() -> dict[str, int]:
    """Kafka message name -> API key."""
    return {name: key for key, name in api_names().items()}


@lru_cache(maxsize=1)
def _api_by_norm() -> dict[str, str]:
    return {_norm(name): name for name in api_names().values()}


def api_hint() -> str:
    """How to write an API, the end of every message about a wrong one."""
    names = api_names().values()
    common = [n for n in _COMMON_APIS if n in names]
    return (
        f"use a Kafka API name or key, e.g. {', '.join(common)} "
        f"({len(api_names())} APIs in all, keys {min(api_names())}-{max(api_names())}; "
        "names are case-insensitive and snake_case works too)"
    )


def resolve_api(value: object) -> str:
    """An API name or key as a user wrote it -> the canonical Kafka name."""
    if isinstance(value, bool):
        raise ValueError(f"{show(value)} is not an API; {api_hint()}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        name = api_names().get(value)
        if name is None:
            raise ValueError(f"unknown API key {value}; {api_hint()}")
        return name
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not an API name or key; {api_hint()}")
    key = _norm(value)
    if key.endswith("request") and key[: -len("request")] in _api_by_norm():
        key = key[: -len("request")]
    name = _api_by_norm().get(key)
    if name is not None:
        return name
    close = difflib.get_close_matches(key, list(_api_by_norm()), n=3, cutoff=0.6)
    did_you_mean = (
        f"did you mean {' or '.join(repr(_api_by_norm()[c]) for c in close)}? " if close else ""
    )
    raise ValueError(f"unknown API {show(value)}; {did_you_mean}{api_hint()}")


@lru_cache(maxsize=1)
def _error_codes() -> dict[str, int]:
    return {str(k).upper(): int(v) for k, v in codec.ERROR_CODES.items()}


@lru_cache(maxsize=1)
def _error_by_norm() -> dict[str, str]:
    return {_norm(name): name for name in _error_codes()}


def resolve_error(value: object) -> str:
    """An error name or code as a user wrote it -> the canonical protocol error name."""
    codes = _error_codes()
    by_code = {code: name for name, code in codes.items()}
    hint = (
        "use a Kafka protocol error name or code, e.g. NOT_COORDINATOR (16), "
        "REBALANCE_IN_PROGRESS (27), UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22), "
        "COORDINATOR_NOT_AVAILABLE (15), FENCED_MEMBER_EPOCH (110); "
        f"codes {min(by_code)}..{max(by_code)} are known"
    )
    if isinstance(value, bool):
        raise ValueError(f"{show(value)} is not an error; {hint}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int):
        name = by_code.get(value)
        if name is None:
            raise ValueError(f"unknown error code {value}; {hint}")
    elif isinstance(value, str):
        found = _error_by_norm().get(_norm(value))
        if found is None:
            wanted = value.strip().upper().replace("-", "_").replace(" ", "_")
            close = difflib.get_close_matches(wanted, list(codes), n=3, cutoff=0.6)
            did_you_mean = f"did you mean {' or '.join(close)}? " if close else ""
            raise ValueError(f"unknown error {show(value)}; {did_you_mean}{hint}")
        name = found
    else:
        raise ValueError(f"{show(value)} is not an error name or code; {hint}")
    if codes[name] == 0:
        raise ValueError(f"{name} (0) means success, not a fault; {hint}")
    return name


def error_code_of(name: str) -> int:
    """The protocol code of a canonical error name (as `resolve_error` returns it)."""
    return _error_codes()[name]
