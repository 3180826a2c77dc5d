"""How `kafka-chaos-proxy faults add` turns its flags into rule JSON.

Apart from the command so that the translation is plain functions (no HTTP, no typer): a
mistake raises `FlagError`, whose text the command prints as its one-line error. The actions,
their field names and the examples in the help all come from the `faults.actions` registry, so
a new action needs no code here: `--action TYPE --set KEY=VALUE` reaches every field of every
action's model, and the shortcut flags (--error, --delay-ms, ...) are sugar that builds the
same JSON.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from kafka_chaos_proxy.faults.actions import ACTIONS
from kafka_chaos_proxy.faults.model_base import unknown_field_message


class FlagError(ValueError):
    """The flags do not describe a rule; the message says what to change (one line)."""


_CHOOSE_AN_ACTION = (
    "choose an action: --error NAME, --error-after-forward NAME, --drop-request, "
    "--drop-response, --delay-ms MS [--jitter-ms MS], --close before|after, "
    "--throttle BYTES_PER_S, or any action with --action TYPE --set KEY=VALUE ... "
    "(or give the whole rule with --json / --file)"
)


def _no_constant(name: str) -> NoReturn:
    # json.loads would read NaN and Infinity as floats, which no action field wants; as text
    # they at least reach the proxy's validator, whose message names the field.
    raise ValueError(name)


def _set_value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true/false/null, lists, "quoted" strings),
    else the text itself, so `--set error=NOT_COORDINATOR` needs no quotes."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _set_text(value: Any) -> str:
    """How to write `value` after --set KEY= so that `_set_value` reads it back."""
    return value if isinstance(value, str) and _set_value(value) == value else json.dumps(value)


def _action_fields(kind: str) -> list[str]:
    return [name for name in ACTIONS[kind].model.model_fields if name != "type"]


def _known_kind(kind: str) -> str:
    # The proxy would refuse it too, but only after a round trip and in the API's words.
    if kind not in ACTIONS:
        close = difflib.get_close_matches(kind, list(ACTIONS), n=1, cutoff=0.6)
        did_you_mean = f"did you mean {close[0]!r}? " if close else ""
        raise FlagError(
            f"unknown action type {kind!r}; {did_you_mean}allowed: {', '.join(ACTIONS)}"
        )
    return kind


def _parse_set(item: str, kind: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, value), the key checked against the action's model; the values are
    left to the proxy's validator, whose 4xx message names the field."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise FlagError(f"--set wants KEY=VALUE, got {item!r}")
    allowed = _action_fields(kind)
    if key not in allowed:
        if not allowed:
            raise FlagError(f"action {kind!r} takes no fields; drop --set {item}")
        raise FlagError(unknown_field_message(key, allowed, f"action of type {kind!r}"))
    return key, _set_value(text)


@dataclass(frozen=True)
class ActionFlags:
    """The action flags of `faults add` as given (None / False / () = not given).

    `--action TYPE` or one shortcut flag (--error, --delay-ms, ...) chooses the action; the
    modifier flags (--side, --reset, ...) and every `--set KEY=VALUE` fill it in. Shortcuts are
    sugar for `--action`: they build the same JSON.
    """

    action: str | None = None
    sets: tuple[str, ...] = ()
    error: str | None = None
    error_after_forward: str | None = None
    drop_request: bool = False
    drop_response: bool = False
    close_after_ms: int | None = None
    delay_ms: int | None = None
    jitter_ms: int | None = None
    distribution: str | None = None
    side: str | None = None
    close: str | None = None
    reset: bool = False
    throttle: int | None = None

    def choices(self) -> list[tuple[str, dict[str, Any]]]:
        """(flag, the action it starts) for every choosing flag given."""
        delay: dict[str, Any] = {"type": "delay", "fixed_ms": self.delay_ms or 0}
        if self.jitter_ms is not None:
            delay["jitter_ms"] = self.jitter_ms
        error_after = {"type": "error_after_forward", "error": self.error_after_forward}
        offered: list[tuple[str, bool, dict[str, Any]]] = [
            ("--action", self.action is not None, {"type": self.action}),
            ("--error", self.error is not None, {"type": "error", "error": self.error}),
            ("--error-after-forward", self.error_after_forward is not None, error_after),
            ("--drop-request", self.drop_request, {"type": "drop_request"}),
            ("--drop-response", self.drop_response, {"type": "drop_response"}),
            ("--delay-ms/--jitter-ms", self.delay_ms is not None or self.jitter_ms is not None,
             delay),
            ("--close", self.close is not None, {"type": "close", "when": self.close}),
            ("--throttle", self.throttle is not None,
             {"type": "throttle", "bytes_per_s": self.throttle}),
        ]  # fmt: skip
        return [(flag, action) for flag, given, action in offered if given]

    def modifiers(self) -> list[tuple[str, str, Any, tuple[str, ...]]]:
        """(flag, field, value, the kinds it applies to) for every modifier flag given."""
        offered = [
            ("--close-after-ms", "close_after_ms", self.close_after_ms,
             ("drop_request", "drop_response")),
            ("--distribution", "distribution", self.distribution, ("delay",)),
            ("--side", "side", self.side, ("delay",)),
            ("--reset", "mode", "reset" if self.reset else None, ("close",)),
        ]  # fmt: skip
        return [modifier for modifier in offered if modifier[2] is not None]

    def given(self) -> list[str]:
        """Every action flag given, to refuse them where the action comes from elsewhere."""
        flags = [flag for flag, _ in self.choices()] + [mod[0] for mod in self.modifiers()]
        return [*flags, "--set"] if self.sets else flags


def action_from_flags(flags: ActionFlags) -> dict[str, Any]:
    """The action JSON the flags describe. Two flags setting one field is a mistake, not an
    override: the line names both."""
    chosen = flags.choices()
    if not chosen:
        raise FlagError(_CHOOSE_AN_ACTION)
    if len(chosen) > 1:
        raise FlagError(f"choose one action, got {' and '.join(flag for flag, _ in chosen)}")
    flag, action = chosen[0]
    kind = _known_kind(str(action["type"]))
    label = f"--action {kind}" if flag == "--action" else flag
    source = {key: label for key in action if key != "type"}
    for option, key, value, kinds in flags.modifiers():
        if kind not in kinds:
            raise FlagError(f"{option} applies to {' / '.join(kinds)} actions, not to {label}")
        action[key], source[key] = value, option
    for item in flags.sets:
        key, value = _parse_set(item, kind)
        if key in source:
            raise FlagError(f"{key} is given twice, by {source[key]} and by --set {item}")
        action[key], source[key] = value, f"--set {item}"
    return action


def add_help() -> str:
    """`faults add --help`, its list of actions read from the registry."""
    actions = "\n\n".join(
        f"{kind} ({', '.join(_action_fields(kind)) or 'no fields'}), e.g. --action {kind}"
        + "".join(f" --set {k}={_set_text(v)}" for k, v in spec.example.items() if k != "type")
        for kind, spec in ACTIONS.items()
    )
    return (
        "Add a rule from flags, from --json, or every rule of --file.\n\n"
        "Any action: --action TYPE --set KEY=VALUE (repeatable; VALUE is read as JSON when it "
        "parses, else as text). The shortcut flags (--error, --delay-ms, --close, ...) build "
        "the same action, and --set adds fields to it. The actions and their keys:\n\n"
        f"{actions}\n\n"
        "With --json or --file, --id, --description, --disabled and the match and dosage flags "
        "apply on top of every rule given (the flag wins); action flags are refused there."
    )


# --------------------------------------------------------------------------- the rule


def rule_from_flags(
    match: dict[str, Any],
    dosage: dict[str, Any],
    rule_id: str | None,
    description: str | None,
    disabled: bool,
) -> dict[str, Any]:
    """The rule JSON but its action, with unset flags left out so the proxy's defaults apply;
    it is also what is laid over each rule given with --json or --file."""
    rule: dict[str, Any] = {}
    if rule_id is not None:
        rule["id"] = rule_id
    if description is not None:
        rule["description"] = description
    if disabled:
        rule["enabled"] = False
    match = {k: v for k, v in match.items() if v is not None and v != []}
    dosage = {k: v for k, v in dosage.items() if v is not None}
    if match:
        rule["match"] = match
    if dosage:
        rule["dosage"] = dosage
    return rule


def _overlay(rule: Any, flags: dict[str, Any]) -> Any:
    """`rule` with the flags' fields on top; match and dosage are merged key by key."""
    if not isinstance(rule, dict):
        return rule  # not a rule at all: the proxy's answer says what is wrong with it
    merged = dict(rule)
    for key, value in flags.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            if key == "match" and "any" not in value:
                current = {k: v for k, v in current.items() if k != "any"}  # now narrowed
            value = {**current, **value}
        merged[key] = value
    return merged


def with_flags(
    rules: list[Any], source: str, flags: ActionFlags, on_top: dict[str, Any]
) -> list[Any]:
    """The rules of --json or --file with the rule-level flags laid over each (a flag wins).

    Action flags are refused rather than merged: an action's fields depend on its type, and a
    flag silently ignored is worse than one refused.
    """
    if given := flags.given():
        raise FlagError(
            f"{' and '.join(given)} cannot be combined with {source}: the rules given there "
            "carry their own action"
        )
    if "id" in on_top and len(rules) != 1:
        raise FlagError(
            f"--id names one rule, but {source} gives {len(rules)}; put the ids in the rules"
        )
    return [_overlay(rule, on_top) for rule in rules]
