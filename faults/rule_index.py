"""Which stored rules could match a request at all, found without walking every rule.

Why: the data plane asks the engine for a decision on every request, and most requests are
Produce and Fetch, which most rules never name. Walking all rules and testing each one's API
set cost 25-30% more CPU per byte with 100 rules that matched nothing. So rules are bucketed
by the API keys they can match (a rule that names no API lands in every bucket but the spared
ones, `faults.match.SPARED_APIS`), and a rule that names a `group_id` is bucketed by that
group too: with a thousand rules for a thousand groups, a Heartbeat of one group tries the
rules of that group only. A rule whose client id glob starts with literal text (`billing-*`)
is bucketed by that text: a Produce from another client does not try it.

The index only narrows; `CompiledMatch.matches` still decides, on the candidates, in the
rules' insertion order (first match wins, `chain` lets later ones act: order is the contract).
It holds references to the engine's entries and nothing else; the engine rebuilds it when the
rule set changes (adding appends in place, which keeps order since a new rule goes last).

May import `faults.body_fields`, `faults.decision` and `faults.match` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from kafka_chaos_proxy.faults.body_fields import body_values
from kafka_chaos_proxy.faults.decision import RequestView
from kafka_chaos_proxy.faults.match import CompiledMatch

_GROUP_ID = "group_id"


class Indexed(Protocol):
    """What the index needs of an engine entry: its compiled match and its place in order."""

    compiled: CompiledMatch
    order: int


E = TypeVar("E", bound=Indexed)


# Client ids whose quiet keys are kept (`RuleIndex.quiet_keys`): ids are chosen by clients,
# so the cache is bounded; past it, it starts over (a proxy's clients use a few ids).
MAX_QUIET_CLIENT_IDS = 1024


class RuleIndex(Generic[E]):
    """Buckets of entries per API key; per (API key, group id) for group rules; and per
    (API key, client id prefix) for rules whose client id glob starts with literal text.

    `api_key_of` is the codec's API name -> key table: buckets exist for every known key, so
    a request with a key the codec does not know gets the rules that name no API (as a walk
    over all rules would give it) and nothing else.
    """

    def __init__(self, api_key_of: Mapping[str, int]) -> None:
        self._known = frozenset(api_key_of.values())
        self._names = {key: name for name, key in api_key_of.items()}
        self._by_api: dict[int, list[E]] = {key: [] for key in self._known}
        self._any: list[E] = []  # rules that name no API (for keys the codec lacks)
        self._by_group: dict[int, dict[str, list[E]]] = {}
        # key -> prefix length -> prefix -> entries: a client id is looked up once per
        # distinct prefix length of the key's rules (usually one).
        self._by_client: dict[int, dict[int, dict[str, list[E]]]] = {}
        self._quiet: dict[str | None, frozenset[int]] = {}  # `quiet_keys`, until rules change

    def quiet_keys(self, client_id: str | None = None) -> frozenset[int]:
        """The known API keys no stored rule can match, for a request from `client_id` (None:
        whatever the client id): the data plane forwards such requests without asking
        (`proxy.pipeline.request_path`). The same object is returned until the rules change,
        so a caller can tell a change by identity."""
        quiet = self._quiet.get(client_id)
        if quiet is None:
            if len(self._quiet) >= MAX_QUIET_CLIENT_IDS:
                self._quiet.clear()
            quiet = self._quiet[client_id] = frozenset(
                key for key in self._known
                if not self._by_api[key] and not any(self._by_group.get(key, {}).values())
                and not self._client_hits(key, client_id))
        return quiet

    def _client_hits(self, key: int, client_id: str | None) -> list[E]:
        """The entries of `key` whose client id prefix `client_id` starts with (None: all)."""
        lengths = self._by_client.get(key)
        if not lengths:
            return []
        if client_id is None:
            return [e for table in lengths.values() for bucket in table.values() for e in bucket]
        hits: list[E] = []
        for length, table in lengths.items():
            if len(client_id) >= length:
                hits.extend(table.get(client_id[:length], ()))
        return hits

    def rebuild(self, entries: Iterable[E]) -> None:
        """Start over from `entries`, given in insertion order."""
        for bucket in self._by_api.values():
            bucket.clear()
        self._any.clear()
        self._by_group.clear()
        self._by_client.clear()
        self._quiet = {}
        for entry in entries:
            self.append(entry)

    def append(self, entry: E) -> None:
        """Index one entry that comes after every entry already indexed."""
        for bucket in self._buckets(entry):
            bucket.append(entry)

    def remove(self, entry: E) -> None:
        """Take one entry out (by identity; the others keep their order)."""
        for bucket in self._buckets(entry):
            for i, held in enumerate(bucket):
                if held is entry:
                    del bucket[i]
                    break

    def _buckets(self, entry: E) -> list[list[E]]:
        """The buckets `entry` belongs in (made when missing); every change of the rules
        comes through here, so this is where `quiet_keys` goes stale."""
        self._quiet = {}
        compiled = entry.compiled
        keys = (compiled.api_keys if compiled.api_keys is not None
                else self._known - compiled.spared_api_keys)
        extra = [self._any] if compiled.api_keys is None else []
        group = _group_of(compiled)
        if group is not None:
            return [*extra, *(self._by_group.setdefault(key, {}).setdefault(group, [])
                              for key in keys)]
        prefix = compiled.client_id_prefix
        if prefix:
            length = len(prefix)
            return [*extra, *(self._by_client.setdefault(key, {}).setdefault(length, {})
                              .setdefault(prefix, []) for key in keys)]
        return [*extra, *(self._by_api.setdefault(key, []) for key in keys)]

    def candidates(self, request: RequestView) -> Sequence[E]:
        """The entries that could match `request`, in insertion order."""
        key = request.api_key
        plain = self._by_api.get(key)
        if plain is None:
            return self._any
        groups = self._by_group.get(key)
        clients = self._by_client.get(key)
        if not groups and not clients:
            return plain
        hits: dict[int, E] = {}
        if clients:
            for entry in self._client_hits(key, request.client_id or ""):
                hits[entry.order] = entry
        if groups:
            body = request.body()
            if body is not None:  # else no group rule can match: they match on the body
                for value in body_values(body, self._names[key], _GROUP_ID):
                    if isinstance(value, str):
                        for entry in groups.get(value, ()):
                            hits[entry.order] = entry
        if not hits:
            return plain
        for entry in plain:
            hits[entry.order] = entry
        return [hits[order] for order in sorted(hits)]


def _group_of(compiled: CompiledMatch) -> str | None:
    """The group id a rule is pinned to, when it names one (one value: a rule's match field
    is a single value, and `group_id` must equal it)."""
    for field_name, wanted in compiled.body_fields:
        if field_name == _GROUP_ID and isinstance(wanted, str):
            return wanted
    return None
