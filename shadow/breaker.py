"""A circuit breaker for staging: stop mirroring to a staging that keeps failing.

A staging that is down, or hangs until every request times out, answers nothing. Going
on mirroring to it only piles up connections and CPU in the mirror worker (production's
neighbour on the same machine) and fills the report with one regression per request that
says nothing new. After `failures` comparisons in a row that staging did not answer, the
breaker opens: requests are not mirrored (they are counted as skipped) for `pause`
seconds; then one request goes through as a probe. An answer closes the breaker; another
failure opens it again for twice as long, up to `longest`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FAILURES = 20       # unanswered comparisons in a row that open the breaker
PAUSE = 5.0         # seconds it stays open at first
LONGEST = 60.0      # seconds it stays open at most


class Breaker:
    def __init__(self, probe_wait: float, *, failures: int = FAILURES, pause: float = PAUSE,
                 longest: float = LONGEST, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.first_pause, self.longest = failures, pause, longest
        self.probe_wait = probe_wait    # how long a probe may take before another is sent
        self.clock = clock
        self.streak = 0                 # unanswered comparisons in a row
        self.pause = pause
        self.open_until: float | None = None    # None: closed
        self.probe_until: float | None = None   # a probe is out until then

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def allow(self) -> bool:
        """Whether the next request may be mirrored."""
        if self.open_until is None:
            return True
        now = self.clock()
        if now < self.open_until or (self.probe_until is not None and now < self.probe_until):
            return False
        self.probe_until = now + self.probe_wait
        return True

    def record(self, unanswered: int, answered: int) -> None:
        """Finished comparisons: how many staging did not answer, how many it did."""
        if answered:
            self.streak, self.pause = 0, self.first_pause
            self.open_until = self.probe_until = None
            return
        if not unanswered:
            return
        self.streak += unanswered
        if self.probe_until is not None:     # the probe went unanswered: wait longer
            self.pause = min(self.pause * 2, self.longest)
            self._open()
        elif self.open_until is None and self.streak >= self.failures:
            self._open()

    def _open(self) -> None:
        self.open_until = self.clock() + self.pause
        self.probe_until = None
