"""Does one request match one rule?

The data plane asks this for every request on every connection, so the check runs in cost order:
header facts first (API key, version, broker, connection, client id, principal), the decoded
body last and only when the rule names a body field *and* everything else already matched. A
rule that matches on the API key alone therefore never makes the data plane decode a Produce or
Fetch frame.

Where a body field lives is `faults.body_fields`' business; a batched request matches when any
of its entries matches, because a fault aimed at "group g1" should hit the request that carries
g1 even if it also carries g2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka_chaos_proxy.faults.body_fields import BODY_FIELDS, body_values
from kafka_chaos_proxy.faults.decision import RequestView
from kafka_chaos_proxy.faults.patterns import ClientIdPattern, compile_glob, compile_regex

if TYPE_CHECKING:
    from kafka_chaos_proxy.faults.model import Match

# `BODY_FIELDS` stays importable from here, where it lived before it had a module of its own.
__all__ = ["BODY_FIELDS", "SPARED_APIS", "CompiledMatch", "body_values", "compile_match"]

# A rule that names no API never touches these: a fault on them stops clients from
# bootstrapping or authenticating at all, which is never what "every request" meant.
SPARED_APIS = ("ApiVersions", "Metadata", "SaslHandshake", "SaslAuthenticate", "FindCoordinator")


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """A `Match` turned into the cheapest form to test: sets, a compiled regex, and the body
    fields to compare, resolved once when the rule is stored rather than per request."""

    api_keys: frozenset[int] | None
    # With no API named: the APIs a rule still leaves alone (bootstrap and authentication).
    spared_api_keys: frozenset[int]
    api_names: Mapping[int, str]
    versions: frozenset[int] | None
    broker: int | None
    connection: int | None
    client_id_glob: ClientIdPattern | None
    client_id_regex: ClientIdPattern | None
    principal_glob: ClientIdPattern | None
    body_fields: tuple[tuple[str, object], ...]
    # What every client id the glob matches starts with (its text up to the first `*`, `?`
    # or `[`); "" when it names none or starts with a wildcard. `faults.rule_index` buckets
    # rules by it, so a Produce is not tried against the rules aimed at other clients.
    client_id_prefix: str = ""

    def matches(self, view: RequestView) -> bool:
        if self.api_keys is not None:
            if view.api_key not in self.api_keys:
                return False
        elif view.api_key in self.spared_api_keys:
            return False
        if self.versions is not None and view.api_version not in self.versions:
            return False
        if self.broker is not None and view.broker_node != self.broker:
            return False
        if self.connection is not None and view.connection_id != self.connection:
            return False
        if self.client_id_glob is not None or self.client_id_regex is not None:
            client_id = view.client_id or ""
            if self.client_id_glob is not None and not self.client_id_glob.fullmatch(client_id):
                return False
            if self.client_id_regex is not None and not self.client_id_regex.search(client_id):
                return False
        if self.principal_glob is not None and not self.principal_glob.fullmatch(
                view.principal or ""):
            return False
        if not self.body_fields:
            return True
        return self._body_matches(view)

    def _body_matches(self, view: RequestView) -> bool:
        api_name = self.api_names.get(view.api_key)
        if api_name is None:
            return False
        body = view.body()
        if body is None:
            return False
        for field_name, wanted in self.body_fields:
            if not any(_same(value, wanted) for value in body_values(body, api_name, field_name)):
                return False
        return True


def _same(value: object, wanted: object) -> bool:
    # bool is an int in Python; a decoded flag must never equal a generation id of 1.
    return type(value) is type(wanted) and value == wanted


def compile_match(match: Match, api_key_of: Mapping[str, int]) -> CompiledMatch:
    """Resolve a validated `Match` against the codec's API keys.

    When a body field is set but no API is listed, the rule is restricted to the APIs that carry
    all its body fields, so that it never decodes requests that could not match anyway.
    """
    body_fields = match.body_fields()
    names: list[str] | None = list(match.apis) if match.apis is not None else None
    if names is None and body_fields:
        candidates = [set(BODY_FIELDS[f]) for f, _ in body_fields]
        names = sorted(set.intersection(*candidates))
    carrying = names if names is not None else []
    api_names = {api_key_of[name]: name for name in carrying if name in api_key_of}
    return CompiledMatch(
        api_keys=frozenset(api_names) if names is not None else None,
        spared_api_keys=frozenset(api_key_of[n] for n in SPARED_APIS if n in api_key_of),
        api_names=api_names,
        versions=frozenset(match.versions) if match.versions is not None else None,
        broker=match.broker,
        connection=match.connection,
        client_id_glob=compile_glob(match.client_id) if match.client_id is not None else None,
        client_id_regex=(compile_regex(match.client_id_regex)
                         if match.client_id_regex is not None else None),
        principal_glob=compile_glob(match.principal) if match.principal is not None else None,
        body_fields=tuple(body_fields),
        client_id_prefix=literal_prefix(match.client_id) if match.client_id is not None else "",
    )


def literal_prefix(glob: str) -> str:
    """The part of a glob before its first wildcard: every string it matches starts so."""
    for i, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:i]
    return glob
