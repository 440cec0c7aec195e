"""The staging circuit breaker, on a clock the test moves."""

from shadow.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failures_in_a_row_open_it_and_an_answer_closes_it() -> None:
    clock = Clock()
    breaker = Breaker(probe_wait=11, failures=5, pause=5, longest=60, clock=clock)
    breaker.record(unanswered=4, answered=0)
    assert breaker.allow() and not breaker.is_open
    breaker.record(unanswered=3, answered=1)     # an answer resets the streak
    breaker.record(unanswered=4, answered=0)
    assert breaker.allow()
    breaker.record(unanswered=1, answered=0)     # the fifth in a row
    assert breaker.is_open and not breaker.allow()
    breaker.record(unanswered=50, answered=0)    # late failures from before: no change
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()                       # one probe...
    assert not breaker.allow()                   # ...and only one
    breaker.record(unanswered=0, answered=1)
    assert not breaker.is_open and breaker.allow() and breaker.allow()


def test_an_unanswered_probe_doubles_the_pause_up_to_the_longest() -> None:
    clock = Clock()
    breaker = Breaker(probe_wait=11, failures=1, pause=5, longest=12, clock=clock)
    breaker.record(unanswered=1, answered=0)
    pauses = []
    for _ in range(4):
        opened = clock.now
        while not breaker.allow():
            clock.now += 0.5
        pauses.append(clock.now - opened)
        breaker.record(unanswered=1, answered=0)  # the probe times out
    assert pauses == [5.0, 10.0, 12.0, 12.0]


def test_a_lost_probe_is_replaced_after_probe_wait() -> None:
    clock = Clock()
    breaker = Breaker(probe_wait=11, failures=1, pause=5, clock=clock)
    breaker.record(unanswered=1, answered=0)
    clock.now += 5
    assert breaker.allow()                       # a probe that is dropped before it is sent
    clock.now += 10.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()
