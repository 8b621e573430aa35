"""When to make ExaBGP re-read its neighbors (SIGUSR1), and what to do around it (pure bookkeeping, no I/O).

ExaBGP 4.2.25 applies a reload in `Reactor.load()`: neighbors missing from the new config get `Peer.remove()`,
new ones a new `Peer`, identical ones are left alone. Two of its habits decide how bgpnet reloads:

- A removed neighbor leaves ExaBGP's table only when that peer runs next, and the reactor runs a *passive*
  peer only while it has a connection (`Reactor.active_peers`). A passive neighbor removed while it had no
  session therefore stays in the table as a dead peer, until someone connects to it: the dead peer accepts
  that connection and closes it, and only then disappears. Added back meanwhile, the identical neighbor is
  matched to the dead peer and nothing is created — a Node deleted and registered again (same address) never
  got its mesh session back. So a passive neighbor added back after a removal is *repaired*: ExaBGP re-reads
  the unchanged config every few seconds until its session is up; once the dead peer is gone, the next reload
  creates the neighbor for real and the peer's next connection attempt succeeds.
- Signals are handled at the top of the reactor loop, before any peer runs, so two reloads in a row can both
  land before a removal completed. Reloads are spaced by SETTLE seconds (the loop turns every 50 ms), and the
  neighbors a reload loaded are considered to exist (fed with announcements) SETTLE after it.

A neighbor removed and added back between two reloads never leaves ExaBGP at all: its session carries on while
the agent dropped what it learned from it, so it is bounced (Cease) to make the peer send its table again.
"""

from __future__ import annotations

from collections.abc import Collection, Set
from dataclasses import dataclass, field

from bgpnet.model import BgpPeer, IPAddress

SETTLE = 1.0
REPAIR_FIRST = 2.0
REPAIR_MAX_INTERVAL = 30.0
REPAIR_FOR = 600.0


@dataclass(frozen=True)
class Decision:
    """What the speaker does now: `reload` (SIGUSR1), `bounce` these sessions, treat the neighbors in `present`
    as existing inside ExaBGP (None: no change), and come back in `wake_in` seconds (None: no need)."""

    reload: bool = False
    bounce: tuple[IPAddress, ...] = ()
    present: frozenset[IPAddress] | None = None
    wake_in: float | None = None


@dataclass
class _Repair:
    since: float
    due: float
    interval: float


@dataclass
class ReloadBook:
    """The reload history of one ExaBGP process (a fresh process starts a fresh book)."""

    last_reload: float = float("-inf")
    removed_at: dict[IPAddress, float] = field(default_factory=dict)
    unloaded: set[IPAddress] = field(default_factory=set)
    repairs: dict[IPAddress, _Repair] = field(default_factory=dict)

    def removed_from_config(self, addresses: Collection[IPAddress]) -> None:
        """These neighbors left the config file (the agent drops their routes now)."""
        self.unloaded.update(addresses)

    def decide(self, now: float, config: frozenset[BgpPeer], loaded: frozenset[BgpPeer],
               established: Set[IPAddress]) -> Decision:
        """`config`: the neighbors in the file; `loaded`: those ExaBGP last read; `established`: sessions up."""
        for address in [a for a, r in self.repairs.items() if a in established or now - r.since > REPAIR_FOR]:
            del self.repairs[address]
        settled = now - self.last_reload >= SETTLE
        repair_due = any(r.due <= now for r in self.repairs.values())
        if (config != loaded or repair_due) and settled:
            return self._reload(now, config, loaded)
        bounce: tuple[IPAddress, ...] = ()
        if settled:
            bounce = self._take_bounces(config, loaded)
        waits = [r.due - now for r in self.repairs.values()]
        if not settled:
            waits.append(self.last_reload + SETTLE - now)
        elif config != loaded:
            waits.append(0.0)
        present = frozenset(p.address for p in loaded) if settled else None
        return Decision(bounce=bounce, present=present, wake_in=max(0.0, min(waits)) if waits else None)

    def _take_bounces(self, config: frozenset[BgpPeer], loaded: frozenset[BgpPeer]) -> tuple[IPAddress, ...]:
        """Neighbors removed from the config and back (unchanged) before ExaBGP read the removal."""
        bounce = self.unloaded & {p.address for p in config & loaded}
        self.unloaded = set()
        return tuple(sorted(bounce, key=lambda a: (a.version, a)))

    def _reload(self, now: float, config: frozenset[BgpPeer], loaded: frozenset[BgpPeer]) -> Decision:
        config_addresses = {p.address for p in config}
        loaded_addresses = {p.address for p in loaded}
        for peer in config:
            if peer.address not in loaded_addresses and peer.address in self.removed_at and peer.passive:
                self.repairs[peer.address] = _Repair(since=now, due=now + REPAIR_FIRST, interval=REPAIR_FIRST)
        for repair in self.repairs.values():
            if repair.due <= now:
                repair.interval = min(repair.interval * 2, REPAIR_MAX_INTERVAL)
                repair.due = now + repair.interval
        for address in loaded_addresses - config_addresses:
            self.removed_at[address] = now
        bounce = self._take_bounces(config, loaded)
        self.last_reload = now
        waits = [SETTLE] + [r.due - now for r in self.repairs.values()]
        return Decision(reload=True, bounce=bounce, wake_in=min(waits))
