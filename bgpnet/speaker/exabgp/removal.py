"""Patch: `exabgp.reactor.loop.Reactor.active_peers` (removed passive neighbors).

Upstream: Exa-Networks/exabgp#1425 ("Dangling sockets with passive removed idle neighbors after reload",
closed for 5.0). ExaBGP 5: drop this module once the pin in tests/unit/test_exabgp_compat.py fails.

ExaBGP 4.2.25 never finishes removing a passive neighbor: it stays in the reactor's table as a dead peer.

`Reactor.load()` removes a neighbor that left the config with `Peer.remove()`, which closes its connection and
stops it; the peer leaves `Reactor._peers` when it runs next (`Peer.run` answers CLOSE). But the reactor runs
only its `active_peers()`: those that are not passive, or that have a connection. A removed passive peer has
neither, so it never runs and never leaves. Two things break (seen with bgpnet's mesh, where the node with the
higher address is passive, when a Node is deleted and registered again with the same address):

- the neighbor added back is identical to the dead peer, so `load()` keeps the dead peer ("peer definition
  identical") and creates nothing;
- the remote's next connection is accepted by the dead peer, which then runs once, closes *itself* (CLOSE) and
  leaves the accepted TCP connection open and unread: the remote waits in OpenSent for minutes.

The fix: a peer that was stopped for good (no generator, not restarting — exactly what `remove()` leaves) is
active too, so it runs on the reactor's next turn and leaves the table as a non-passive one does. Every other
peer is chosen as before.
"""

from __future__ import annotations

from typing import Any


def stopped_for_good(peer: Any) -> bool:
    """What `Peer.remove()` (and `Peer.stop()`) leave behind: no generator and no restart pending."""
    return peer.generator is None and not peer._restart


def apply() -> None:
    """Replace `Reactor.active_peers` as described above."""
    from exabgp.reactor.loop import Reactor

    original = Reactor.active_peers
    if getattr(original, "__wrapped__", None) is not None:
        return

    def active_peers(self: Any) -> set:
        peers = original(self)
        peers.update(key for key, peer in self._peers.items() if stopped_for_good(peer))
        return peers

    active_peers.__wrapped__ = original  # type: ignore[attr-defined]
    Reactor.active_peers = active_peers  # type: ignore[method-assign]
