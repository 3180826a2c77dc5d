"""API keys, names and version ranges, derived from the generated schema.

Everything that answers "which APIs/versions exist and how are they framed" lives here so
that the header fast path, the message engine and the proxy's ApiVersions clamping agree.
"""

from __future__ import annotations

import re
from enum import StrEnum

from kafka_chaos_proxy.codec import schema
from kafka_chaos_proxy.codec.errors import UnknownApiError
from kafka_chaos_proxy.codec.schema import ApiKey


class Direction(StrEnum):
    REQUEST = "request"
    RESPONSE = "response"


def _index() -> tuple[dict[int, str], dict[int, tuple[int, int]], dict[int, tuple[int, int]],
                      dict[int, tuple[int, int]]]:
    names: dict[int, str] = {}
    valid: dict[int, tuple[int, int]] = {}
    req_flex: dict[int, tuple[int, int]] = {}
    resp_flex: dict[int, tuple[int, int]] = {}
    _UNSTABLE.clear()
    for spec in schema.MESSAGES.values():
        if spec.api_key is None:
            continue
        if spec.kind == "request":
            names[spec.api_key] = spec.name.removesuffix("Request")
            valid[spec.api_key] = spec.valid
            req_flex[spec.api_key] = spec.flexible
            if spec.latest_unstable:
                _UNSTABLE.add(spec.api_key)
        elif spec.kind == "response":
            resp_flex[spec.api_key] = spec.flexible
    return dict(sorted(names.items())), valid, req_flex, resp_flex


_UNSTABLE: set[int] = set()
API_NAMES: dict[int, str]
API_NAMES, _VALID, _REQ_FLEX, _RESP_FLEX = _index()
_BY_NAME: dict[str, int] = {}
for _key, _name in API_NAMES.items():
    _BY_NAME[_name.lower()] = _key
    _BY_NAME[re.sub(r"(?<!^)(?=[A-Z])", "_", _name).lower()] = _key
    _BY_NAME[_name.lower() + "request"] = _key


def _valid_names() -> str:
    return ", ".join(f"{n} ({k})" for k, n in API_NAMES.items())


def api_key_of(name_or_key: str | int) -> int:
    """Accepts 11, "11", "JoinGroup", "join_group", "JOIN_GROUP", "JoinGroupRequest"."""
    if isinstance(name_or_key, int) and not isinstance(name_or_key, bool):
        if name_or_key in API_NAMES:
            return name_or_key
    elif isinstance(name_or_key, str):
        text = name_or_key.strip()
        if re.fullmatch(r"-?\d+", text) and int(text) in API_NAMES:
            return int(text)
        key = _BY_NAME.get(text.lower()) or _BY_NAME.get(text.replace("-", "_").lower())
        if key is not None:
            return key
    raise UnknownApiError(f"unknown api {name_or_key!r}; valid: {_valid_names()}")


def api_name(api_key: int) -> str:
    try:
        return API_NAMES[api_key]
    except (KeyError, TypeError):
        raise UnknownApiError(f"unknown api key {api_key!r}",
                              api_key=api_key if isinstance(api_key, int) else None) from None


def api_label(api_key: int) -> str:
    """The name to show for an API key in logs, events, metrics and the CLI; never raises.

    A key the codec does not know (a newer client, or junk) is shown as its number, so that
    every caller spells an unknown key the same way.
    """
    name = API_NAMES.get(api_key)
    return name if name is not None else str(api_key)


def supported_versions(api_key: int) -> tuple[int, int]:
    """(min, max) version of an api known to the codec."""
    api_name(api_key)
    return _VALID[api_key]


def stable_versions(api_key: int) -> tuple[int, int]:
    """Like ``supported_versions`` but without a latest version the specs mark unstable.

    An unstable version may still change before a Kafka release, so a broker's idea of it
    can differ from the specs the schema was generated from; negotiating it is a gamble.
    The result can be empty (min > max) when the only version is unstable.
    """
    lo, hi = supported_versions(api_key)
    return (lo, hi - 1) if api_key in _UNSTABLE else (lo, hi)


def is_supported(api_key: int, api_version: int) -> bool:
    rng = _VALID.get(api_key)
    return rng is not None and rng[0] <= api_version <= rng[1]


def check_supported(api_key: int, api_version: int) -> None:
    if not is_supported(api_key, api_version):
        if api_key not in API_NAMES:
            raise UnknownApiError(f"unknown api key {api_key}", api_key=api_key,
                                  api_version=api_version)
        lo, hi = _VALID[api_key]
        raise UnknownApiError(
            f"{API_NAMES[api_key]} version {api_version} is not supported (known {lo}-{hi})",
            api_key=api_key, api_version=api_version)


def is_flexible(api_key: int, api_version: int, direction: str = Direction.REQUEST) -> bool:
    """Whether this version uses compact encodings and tagged fields."""
    check_supported(api_key, api_version)
    rng = _REQ_FLEX[api_key] if direction == Direction.REQUEST else _RESP_FLEX[api_key]
    return rng[0] <= api_version <= rng[1]


def request_header_version(api_key: int, api_version: int) -> int:
    """2 for flexible requests, 1 otherwise; ControlledShutdown v0 alone uses v0."""
    check_supported(api_key, api_version)
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and api_version == 0:
        return 0
    return 2 if is_flexible(api_key, api_version, Direction.REQUEST) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 for flexible responses, 0 otherwise; ApiVersions responses always use v0 so that a
    client can read the error of a version it does not support."""
    check_supported(api_key, api_version)
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if is_flexible(api_key, api_version, Direction.RESPONSE) else 0
