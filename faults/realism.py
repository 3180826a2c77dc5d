"""Realism of injected errors: warnings for rules, and the `synthetic` flag of the event log.

A rule whose action answers with an error (`error`, `error_after_forward`) on an API where no
real broker ever sends that error still works: the client gets the error. But what it then
tests is the client's robustness against a response Kafka never produces, not a race it can
meet in production, and users should know which of the two they are writing. The facts are in
`faults.broker_errors` (read from Apache Kafka's broker code); this module applies them:

* ``rule_warnings(rule)``: one line per API of the rule where the error is never returned
  (at the rule's versions, when it names some). A rule that names no API lands on every API
  its other fields allow; it gets a warning only when no group-coordination API of the table
  ever gets that error, because then wherever it lands among them, it is synthetic.
* ``is_synthetic(api_name, api_version, error_code)``: for one response in the event log,
  True when a real broker would never send it (NONE, unknown codes and APIs or versions the
  table does not judge are never synthetic).

May import `codec` and `faults` (the rule model only for its type).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_chaos_proxy import codec
from kafka_chaos_proxy.faults.broker_errors import BROKER_ERRORS, broker_returns, why_not_at

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.model import FaultRule

# The actions that answer the client with `action.error`.
ERROR_ACTIONS = frozenset({"error", "error_after_forward"})


def _versions_of(api: str, versions: list[int] | None) -> list[int] | None:
    """The rule's versions this API has (None: every version); [] when it has none of them."""
    if versions is None:
        return None
    try:
        low, high = codec.supported_versions(codec.api_key_of(api))
    except codec.UnknownApiError:
        return list(versions)
    return [v for v in versions if low <= v <= high]


def _no_api_warning(error: str, versions: list[int] | None) -> list[str]:
    per_version: list[int | None] = list(versions) if versions else [None]
    if any(broker_returns(api, v, error) for api in BROKER_ERRORS for v in per_version):
        return []
    at = "" if versions is None else f" at versions {', '.join(map(str, sorted(set(versions))))}"
    return [
        f"no group-coordination API ({', '.join(BROKER_ERRORS)}) is ever answered with "
        f"{error} by a real broker{at}; where this rule lands among them it is a robustness "
        "test, not a race (name apis to be told per API)"
    ]


def rule_warnings(rule: FaultRule) -> list[str]:
    """Warnings about the error a rule injects: one per API in ``match.apis`` where a real
    broker never answers with it (at ``match.versions`` when given); for a rule without apis,
    one when no coordination API ever gets it. Empty for other actions and realistic errors."""
    action = rule.action
    error = getattr(action, "error", None)
    if getattr(action, "type", None) not in ERROR_ACTIONS or not isinstance(error, str):
        return []
    versions = rule.match.versions
    if not rule.match.apis:
        return _no_api_warning(error, versions)
    warnings: list[str] = []
    for api in rule.match.apis:
        api_versions = _versions_of(api, versions)
        if api_versions == []:
            continue  # the rule never lands on this API
        reason = why_not_at(api, api_versions, error)
        if reason is not None:
            warnings.append(f"{api}: {reason}")
    return warnings


def is_synthetic(api_name: str, api_version: int, error_code: int) -> bool:
    """True when a real broker would never answer `api_name` at `api_version` with the error
    `error_code`: the event log marks such responses (injected ones) as synthetic."""
    if error_code == 0:
        return False
    name = codec.error_name(error_code)
    if name not in codec.ERROR_CODES:
        return False  # a code newer than the specs: nothing known about it
    return not broker_returns(api_name, api_version, name)
