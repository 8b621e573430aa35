"""ExaBGP's reconnect backoff as bgpnet patches it: a peer that starts listening late is reached soon after,
a peer that stays away is still backed off to ExaBGP's 60 s, and a drop after a quiet spell retries at once.
Driven through ExaBGP's own Delay class on a fake clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpnet.speaker.exabgp import reconnect


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    import exabgp.reactor.delay

    fake = FakeClock()
    monkeypatch.setattr(exabgp.reactor.delay, "time", fake)
    monkeypatch.setattr(reconnect, "time", fake)
    return fake


@pytest.fixture
def patched_delay(monkeypatch):
    from exabgp.reactor.delay import Delay

    monkeypatch.setattr(Delay, "increase", Delay.increase)  # put ExaBGP's back afterwards
    reconnect.apply()


def first_contact(clock: FakeClock, listening_after: float) -> float:
    """Seconds from the first attempt until an attempt finds the peer listening: the reactor's view (an
    attempt starts as soon as `backoff()` is False; a refused one fails at once and calls `increase()`)."""
    from exabgp.reactor.delay import Delay

    start = clock.now
    delay = Delay()
    while clock.now - start < listening_after:
        delay.increase()  # connection refused
        while delay.backoff():
            clock.now += 0.01  # ExaBGP's reactor loop wakes every few tens of ms
    return clock.now - start


def test_exabgps_own_schedule_misses_a_listener_by_two_seconds(clock, monkeypatch):
    from exabgp.reactor.delay import Delay

    monkeypatch.setattr(Delay, "increase", Delay.increase)
    # What the mesh join measured: the joiner listens ~1.1 s after its peers first dial; ExaBGP's next
    # attempt after the ones at 0 s and +1 s is at +3 s.
    assert first_contact(clock, 1.1) >= 3.0


def test_patched_schedule_reaches_a_late_listener_soon(clock, patched_delay):
    assert first_contact(clock, 1.1) <= 1.5


@given(st.floats(min_value=0.01, max_value=600))
def test_extra_wait_is_at_most_a_quarter_of_the_wait_so_far(listening_after):
    # Pure schedule: attempts at 0, then after each wait; the first one at or after `listening_after`.
    t, wait = 0.0, 0.0
    while t < listening_after:
        t += wait
        wait = reconnect.next_wait(wait)
    assert t <= 1.25 * listening_after + reconnect.FIRST_RETRY + 1e-9


def test_a_peer_that_stays_away_is_backed_off_to_exabgps_cap():
    waits = [0.0]
    for _ in range(100):
        waits.append(reconnect.next_wait(waits[-1]))
    assert waits[1] == reconnect.FIRST_RETRY
    assert all(a <= b for a, b in zip(waits, waits[1:], strict=False))
    assert waits[-1] == reconnect.MAX_RETRY == 60.0


def test_failures_in_a_row_back_off_but_a_drop_after_a_quiet_spell_retries_at_once(clock, patched_delay):
    from exabgp.reactor.delay import Delay

    delay = Delay()
    for _ in range(30):
        delay.increase()
        clock.now = delay._time  # the next attempt, which fails at once again
    delay.increase()
    assert delay._time - clock.now > 10  # backed off
    # The next attempt succeeds and the session stays up for a long time, then drops.
    clock.now = delay._time + reconnect.QUIET_RESET + 1
    delay.increase()
    assert not delay.backoff()  # reconnect attempt at once
    delay.increase()
    assert delay._time - clock.now == pytest.approx(reconnect.FIRST_RETRY)


def test_the_launcher_installs_the_schedule(patched):
    from exabgp.reactor.delay import Delay

    assert Delay.increase.__module__ == reconnect.__name__
