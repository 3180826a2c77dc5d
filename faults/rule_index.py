"""Which stored rules could match a request at all, found without walking every rule.

Why: the data plane asks the engine for a decision on every request, and most requests are
Produce and Fetch, which most rules never name. Walking all rules and testing each one's API
set cost 25-30% more CPU per byte with 100 rules that matched nothing. So rules are bucketed
by the API keys they can match (a rule that names no API lands in every bucket but the spared
ones, `faults.match.SPARED_APIS`), and a rule that names a `group_id` is bucketed by that
group too: with a thousand rules for a thousand groups, a Heartbeat of one group tries the
rules of that group only.

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


class RuleIndex(Generic[E]):
    """Buckets of entries per API key, and per (API key, group id) for group rules.

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

    def rebuild(self, entries: Iterable[E]) -> None:
        """Start over from `entries`, given in insertion order."""
        for bucket in self._by_api.values():
            bucket.clear()
        self._any.clear()
        self._by_group.clear()
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
        """The buckets `entry` belongs in (made when missing)."""
        compiled = entry.compiled
        if compiled.api_keys is None:
            return [self._any, *(self._by_api[key]
                                 for key in self._known - compiled.spared_api_keys)]
        group = _group_of(compiled)
        if group is None:
            return [self._by_api.setdefault(key, []) for key in compiled.api_keys]
        return [self._by_group.setdefault(key, {}).setdefault(group, [])
                for key in compiled.api_keys]

    def candidates(self, request: RequestView) -> Sequence[E]:
        """The entries that could match `request`, in insertion order."""
        key = request.api_key
        plain = self._by_api.get(key)
        if plain is None:
            return self._any
        groups = self._by_group.get(key)
        if not groups:
            return plain
        body = request.body()
        if body is None:  # a group rule matches on the body: none of them can match
            return plain
        hits: dict[int, E] = {}
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
