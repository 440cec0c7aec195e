"""Log text made safe for a terminal: control characters become visible escapes.

A log line is attacker-controlled (a user agent, a path). Written raw, `ESC ] 0 ; x BEL`
would retitle the terminal and `ESC [ 2 J` clear it; shown as `\\x1b]0;x\\x07` they are
just text. Tabs become spaces so columns stay where the layout put them.
"""

from __future__ import annotations

import json
import re

# C0 controls except tab, DEL, and C1 controls (which some terminals also obey).
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# What JSON leaves raw that a terminal would obey: DEL and the C1 controls (C0 is escaped).
JSON_RAW_CONTROL = re.compile(r"[\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def json_text(value: object) -> str:
    """`value` as one line of JSON that is safe on a terminal: text stays readable (no
    ASCII escapes for accents), DEL and C1 controls are written as \\u escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return JSON_RAW_CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def printable(text: str) -> str:
    if text.isprintable():
        return text
    return CONTROL.sub(_visible, text).replace("\t", "    ")
