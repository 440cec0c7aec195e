"""The '?' screen: every key, and the filter language at a glance."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# logtui keys

| key | does |
|---|---|
| `/` | filter: Enter applies, Esc leaves; checked as you type; Up/Down: history |
| `Enter` | on a panel row: drill down (add its term); on a log line: its record |
| `Backspace` | drill up: remove the last term of the filter |
| `Tab` / `Shift+Tab` | move between panels (or click one) |
| `p` | pause or resume the display (reading goes on) |
| `w` | window: 1m, 5m, 15m, 1h, all |
| `b` | bots: all, hide, only |
| `t` | next theme |
| `y` | copy the current view as a string (open it with `--view`) |
| `End` | in the log stream: follow the newest line again |
| `?` | this help |
| `q` | quit |

# Filters

`status:5xx` `status:>=400` `method:POST` `path:/api/*` `endpoint:/users/{id}` `ip:10.0.0.0/8`
`latency:>0.5` `bot:google` `bot:*` `-bot:*` `country:KR` `tag:nginx.*` `level:error`
`field.name:value` `"quoted phrase"` `/regex/` — terms are ANDed, `OR` between terms,
`-term` negates, parentheses group.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%;
                                  border: thick $accent; background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
