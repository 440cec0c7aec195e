import json

from hypothesis import given
from hypothesis import strategies as st

from logtui.core.sanitize import json_text, printable


def test_terminal_escapes_become_visible_text() -> None:
    assert printable("a\x1b]0;x\x07b") == "a\\x1b]0;x\\x07b"
    assert printable("\x1b[2J") == "\\x1b[2J"
    assert printable("\x9b31m") == "\\x9b31m"
    assert printable("tab\there") == "tab    here"
    assert printable("caf\u00e9 \u2603 \u4e2d") == "caf\u00e9 \u2603 \u4e2d"


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)


def test_json_text_escapes_what_a_terminal_would_obey_and_nothing_else() -> None:
    value = {"path": "/\u009b2J\u007f", "ua": "café \x1b[2J", "n": 1}
    text = json_text(value)
    assert json.loads(text) == value
    assert text.isprintable() and "café" in text
