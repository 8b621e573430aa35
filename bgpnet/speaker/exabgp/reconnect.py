"""Patch: ExaBGP 4.2.25's ConnectRetry schedule (`exabgp.reactor.delay.Delay.increase`).

Upstream: Exa-Networks/exabgp#1176 ("re-try the connection establishment after the peering goes down ...
60s"): the maintainer's fix resets the delay when a session establishes (in 5.0), which covers the second
problem below, not the first. ExaBGP 5: keep this module only if a join still waits for ExaBGP's schedule.

How soon ExaBGP tries again to open a BGP connection that failed (its ConnectRetry timer).

ExaBGP 4.2 waits 0, 1, 2, 3, 4, 5, 7, 9 ... s (capped at 60 s, not configurable) before each new attempt after
a failed connection or a dropped session. In a full mesh one side of each pair only listens (bgpnet.state), so
when a node joins, every existing node whose turn it is to connect starts dialling as soon as it sees the new
Node, about a second before the joiner's ExaBGP listens (agent start, first API list, ExaBGP start). Counted
from the Node's creation its attempts land at about +0.1, +0.2, +1.3 and +3.4 s, and the joiner listened at
about +1.3 s: a few ms either way made a join take 1.35 s or 3.4 s (bench/convergence.py, 10-node mesh).
Here the wait grows geometrically from FIRST_RETRY by GROWTH (each wait is about a
quarter of the time spent failing so far), so a peer that comes up after T seconds is reached by about 1.25 T;
it still backs off to ExaBGP's 60 s for a peer that stays away.

ExaBGP also never forgets its backoff: it is reset only by an operator action or an incoming connection, not
when a session establishes, so every drop of a long-lived session (a peer's agent restarted) would wait longer
than the last. A failure more than QUIET_RESET after the last scheduled attempt starts the series again.
"""

from __future__ import annotations

import time

FIRST_RETRY = 0.25
GROWTH = 1.25
MAX_RETRY = 60.0  # ExaBGP's own cap
QUIET_RESET = MAX_RETRY


def next_wait(previous: float) -> float:
    """The wait before the attempt after next, given the wait just scheduled (0 for the first failure)."""
    return min(MAX_RETRY, max(FIRST_RETRY, previous * GROWTH))


def apply() -> None:
    """Give ExaBGP's per-peer Delay (exabgp.reactor.delay) bgpnet's schedule. Its state stays ExaBGP's:
    `_time` is when the next attempt may start, `_next` the wait the following failure will schedule."""
    from exabgp.reactor.delay import Delay

    def increase(self: Delay) -> None:
        now = time.time()
        if now - self._time > QUIET_RESET:
            self._next = 0  # the first failure after a quiet spell retries at once, as a fresh peer does
        self._time = now + self._next
        self._next = next_wait(self._next)

    Delay.increase = increase  # type: ignore[method-assign]
