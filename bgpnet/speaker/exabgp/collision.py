"""Patch: `exabgp.reactor.peer.Peer.handle_connection` (connection collision).

Upstream: none fixed; Exa-Networks/exabgp#1136 reports a session "stuck in OPEN CONFIRM" (closed without a
fix). ExaBGP 5: re-test with tests/unit/test_exabgp_compat.py's collision pin before dropping it.

ExaBGP 4.2.25's connection collision (RFC 4271 §6.8), resolved without leaving the peer stuck.

When a peer's own outgoing connection has reached OpenConfirm and the same neighbor connects in with a higher
BGP Identifier, `Peer.handle_connection` does what §6.8 asks: it closes the outgoing connection and accepts the
incoming one (a new `Protocol`, the old generator dropped). But it leaves the peer's FSM in OPENCONFIRM, and
`Peer.run` starts a session on a fresh connection only from a state below OpenConfirm ("stopping, other
connection is established"): the accepted connection is never read, the neighbor's next attempts are accepted
and ignored the same way, and the session stays down until ExaBGP restarts. Seen with external peers (a ToR or
route servers) that, like BIRD, connect actively while ExaBGP does: in bench/footprint.py with 100 BIRD peers
about one run in two had one peer wedged ("closing outgoing connection as we have another incoming on with
higher router-id", state connected for ever). The mesh avoids collisions altogether (one initiator per pair,
bgpnet.state).

The fix: after the incoming connection replaced an OpenConfirm outgoing one, the FSM goes back to ACTIVE (where
`Peer._establish` starts anyway), so the next `run` establishes the session on the accepted connection, with
the OPEN exchange §6.8 expects on it. Every other path of `handle_connection` is ExaBGP's, unchanged.
"""

from __future__ import annotations

from typing import Any


def apply() -> None:
    """Wrap ExaBGP's `Peer.handle_connection` as described above."""
    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.peer import Peer

    original = Peer.handle_connection

    def handle_connection(self: Any, connection: Any) -> Any:
        was_open_confirm = self.fsm == FSM.OPENCONFIRM
        refused = original(self, connection)  # a NOTIFICATION generator when refused, None when accepted
        if refused is None and was_open_confirm:
            self.fsm.change(FSM.ACTIVE)
        return refused

    handle_connection.__wrapped__ = original  # type: ignore[attr-defined]
    Peer.handle_connection = handle_connection  # type: ignore[method-assign]
