"""When to make ExaBGP re-read its neighbors (SIGUSR1), and with which ones (pure bookkeeping, no I/O).

ExaBGP 4.2.25 applies a reload in `Reactor.load()`: neighbors missing from the new config get `Peer.remove()`,
new ones a new `Peer`, changed ones are re-established, identical ones are left alone. Its habits decide how
bgpnet reloads:

- Signals are handled at the top of the reactor loop, before any peer runs, and a removed neighbor leaves
  ExaBGP's table only when its peer runs next. Reloads are therefore spaced by SETTLE seconds (the loop turns
  every 50 ms), and the neighbors a reload loaded count as existing (and are fed announcements) SETTLE after it.
- A removed passive neighbor never left ExaBGP's table at all (bgpnet.speaker.exabgp.removal fixes that in the
  launcher), so a Node deleted and registered again with the same address never got its mesh session back.
- A neighbor removed and added back unchanged between two reloads would never leave ExaBGP: its session and
  its Adj-RIB-Out (our announcements, old pod CIDR included) would carry on, while the agent dropped what it
  learned from the peer. Every removal reaches ExaBGP: such a neighbor is left out of one reload and comes
  back with the next.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from bgpnet.model import BgpPeer, IPAddress

SETTLE = 1.0


@dataclass(frozen=True)
class Decision:
    """What the speaker does now: make ExaBGP load exactly `load` (None: no reload), treat the neighbors in
    `present` as existing inside ExaBGP (None: no change), and come back in `wake_in` seconds (None: no need)."""

    load: frozenset[BgpPeer] | None = None
    present: frozenset[IPAddress] | None = None
    wake_in: float | None = None


@dataclass
class ReloadBook:
    """The reload history of one ExaBGP process (a fresh process starts a fresh book)."""

    last_reload: float = float("-inf")
    unloaded: set[IPAddress] = field(default_factory=set)

    def removed_from_config(self, addresses: Collection[IPAddress]) -> None:
        """These neighbors left the desired config (the agent drops their routes now)."""
        self.unloaded.update(addresses)

    def decide(self, now: float, desired: frozenset[BgpPeer], loaded: frozenset[BgpPeer]) -> Decision:
        """`desired`: the neighbors ExaBGP should have; `loaded`: those it last read."""
        # Removed and back unchanged since the last reload: out of this one, back with the next.
        target = desired - {p for p in desired & loaded if p.address in self.unloaded}
        if now - self.last_reload < SETTLE:
            return Decision(wake_in=self.last_reload + SETTLE - now)
        if target != loaded:
            self.unloaded = set()  # every removal until now reaches ExaBGP with this reload (or was never loaded)
            self.last_reload = now
            return Decision(load=target, wake_in=SETTLE)
        return Decision(present=frozenset(p.address for p in loaded))
