"""Text from the wire, made safe for a terminal.

Group ids, member ids and client ids are chosen by clients; an escape sequence in one of them
would otherwise reach the terminal of whoever runs `events tail` or `groups` (retitle it,
hide lines, worse), or reads a pytest report. Every line built from such values passes
through `safe`: the CLI's, and the event lines of `proxy.event_line`.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls: everything a terminal may interpret.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """Control characters shown as `\\xNN` escapes; everything else unchanged."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe_lines(text: str) -> str:
    """`safe` for text of several lines: the line breaks stay, everything else is escaped."""
    return "\n".join(safe(line) for line in text.split("\n"))
