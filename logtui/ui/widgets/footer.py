"""The key footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

# Focus moves come in bursts (Enter in the filter bar hands the focus back to a panel):
# the footer follows a moment later, in one go.
SETTLE = 0.2   # seconds


class KeyFooter(Footer):
    """Textual's Footer rebuilds itself (a widget per key) on every focus change, even when
    the keys shown stay the same. That rebuild landed in the frame right after Enter or
    Backspace, just as the view was being recounted; here it waits for the focus to
    settle and is skipped when nothing it shows changed."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: tuple[tuple[str, str, bool], ...] | None = None
        self.pending: Timer | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self.shown is None:        # the first keys: at once
            self.shown = _shown(screen)
            super().bindings_changed(screen)
            return
        if self.pending is not None:
            self.pending.stop()
        self.pending = self.set_timer(SETTLE, lambda: self._settled(screen))

    def _settled(self, screen: Screen[object]) -> None:
        shown = _shown(screen)
        if shown != self.shown:
            self.shown = shown
            super().bindings_changed(screen)


def _shown(screen: Screen[object]) -> tuple[tuple[str, str, bool], ...]:
    return tuple((binding.key, binding.description, enabled)
                 for _, binding, enabled, _ in screen.active_bindings.values() if binding.show)
