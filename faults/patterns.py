"""Client-id patterns that cannot stall the proxy: globs and regular expressions, both run by
RE2, which matches in time linear in the input whatever the pattern.

Python's `re` backtracks: `^(a+)+$` against thirty `a` and a `b` takes seconds per request, on
the event loop every connection shares. RE2 has no backtracking (and so no lookaround or
back-references, which a rule about client ids never needs). Patterns are also bounded in
length and in the memory their compiled program may take, and they are compiled once, when the
rule is validated and stored, never on the data path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import re2

from kafka_chaos_proxy.faults.names import show

MAX_PATTERN_CHARS = 256
_PROGRAM_MEMORY_BYTES = 1 << 20  # RE2's own cap on what one compiled pattern may use


class PatternError(ValueError):
    """A pattern that is too long, does not compile, or uses what RE2 does not offer."""


class ClientIdPattern(Protocol):
    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _PROGRAM_MEMORY_BYTES
    options.log_errors = False
    return options


def _check_length(kind: str, text: str) -> None:
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"{kind} is {len(text)} characters; at most {MAX_PATTERN_CHARS}")


def compile_regex(text: str) -> ClientIdPattern:
    """An RE2 regular expression (searched, like `re.search`)."""
    _check_length("the regular expression", text)
    try:
        pattern: ClientIdPattern = re2.compile(text, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(f"not a valid RE2 regular expression: {reason} (RE2 has no "
                           "lookaround or back-references)") from None
    return pattern


def glob_to_regex(glob: str) -> str:
    """fnmatch's glob language (`*`, `?`, `[seq]`, `[!seq]`) as an RE2 expression for
    `fullmatch`, translated the way `fnmatch.translate` does (same edge cases: an unclosed
    `[`, empty and reversed ranges), minus the lookarounds RE2 does not have."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        ch = glob[i]
        i += 1
        if ch == "*":
            if not out or out[-1] != "(?s:.*)":  # runs of * mean one *
                out.append("(?s:.*)")
        elif ch == "?":
            out.append("(?s:.)")
        elif ch == "[":
            i = _bracket(glob, i, out)
        else:
            out.append(_escape(ch))
    return "".join(out)


_NOTHING = r"[^\x{0}-\x{10FFFF}]"  # an empty set: RE2 has no (?!)


def _bracket(glob: str, i: int, out: list[str]) -> int:
    """Translate the `[...]` starting after index i-1; returns where to go on."""
    n = len(glob)
    j = i
    if j < n and glob[j] == "!":
        j += 1
    if j < n and glob[j] == "]":
        j += 1
    while j < n and glob[j] != "]":
        j += 1
    if j >= n:
        out.append(r"\[")
        return i
    stuff = _set_body(glob, i, j)
    if not stuff:
        out.append(_NOTHING)
    elif stuff == "!":
        out.append("(?s:.)")
    else:
        if stuff[0] == "!":
            stuff = "^" + stuff[1:]
        elif stuff[0] in ("^", "["):
            stuff = "\\" + stuff
        out.append(f"[{stuff}]")
    return j + 1


def _set_body(glob: str, i: int, j: int) -> str:
    stuff = glob[i:j]
    if "-" not in stuff:
        return stuff.replace("\\", r"\\").replace("[", r"\[")
    chunks: list[str] = []
    k = i + 2 if glob[i] == "!" else i + 1
    while True:
        k = glob.find("-", k, j)
        if k < 0:
            break
        chunks.append(glob[i:k])
        i = k + 1
        k = k + 3
    chunk = glob[i:j]
    if chunk:
        chunks.append(chunk)
    else:
        chunks[-1] += "-"
    for k in range(len(chunks) - 1, 0, -1):  # drop empty (reversed) ranges
        if chunks[k - 1][-1] > chunks[k][0]:
            chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
            del chunks[k]
    return "-".join(c.replace("\\", r"\\").replace("-", r"\-").replace("[", r"\[")
                    for c in chunks)


def _escape(ch: str) -> str:
    return "\\" + ch if not ch.isalnum() and ch != "_" and ord(ch) < 128 else ch


def compile_glob(text: str) -> ClientIdPattern:
    """A glob on the whole client id, as `fnmatch.fnmatchcase` reads it."""
    _check_length("the glob", text)
    try:
        pattern: ClientIdPattern = re2.compile(glob_to_regex(text), _options())
    except re2.error as exc:
        raise PatternError(f"not a usable glob: {exc}") from None
    return pattern


def checked(value: str | None, field: str, compile: Callable[[str], ClientIdPattern]
            ) -> str | None:
    """`value` unchanged if `compile` (a glob or a regex) accepts it; otherwise the
    ValueError a model's field validator raises, naming `field`."""
    if value is not None:
        try:
            compile(value)
        except PatternError as exc:
            raise ValueError(f"{field} {show(value)}: {exc}") from None
    return value
