"""Stale-route tracking for graceful restart, both roles (pure bookkeeping, no I/O).

`StaleRoutes` is the *restarting* side: routes already in the kernel when the agent starts (left by its
previous run), and routes learned before an ExaBGP restart, are kept until every peer has sent End-of-RIB or
the start-up grace period ends; then whatever was not learned again is swept.

`PeerHolds` is the *helper* side (RFC 4724 §4.2): when the session with a peer that advertised the graceful
restart capability drops, that peer's routes stay in the RIB, marked stale, for the Restart Time it
advertised. When it comes back, what it re-announces is fresh again; at its End-of-RIB (or when the time is
up) the prefixes it did not re-announce are withdrawn. Which drops qualify is the agent's decision (see
`qualifies_for_hold`); ExaBGP itself keeps nothing, so the whole helper role lives here and in the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bgpnet.model import IPAddress, KernelRoute
from bgpnet.prefix import Prefix


@dataclass
class StaleRoutes:
    """Routes kept (not yet swept) while peers re-send their tables after a restart."""

    routes: dict[Prefix, KernelRoute] = field(default_factory=dict)
    awaiting_eor: set[IPAddress] = field(default_factory=set)
    deadline: float = 0.0
    # False until the peer set is known (the first Node list after a start): until then nobody has been
    # asked for End-of-RIB, so an empty `awaiting_eor` does not yet mean "everyone has re-sent".
    peers_known: bool = True

    def active(self, now: float) -> bool:
        waiting = bool(self.awaiting_eor) or not self.peers_known
        return bool(self.routes) and waiting and now < self.deadline

    def synced(self, now: float) -> bool:
        """Every peer has re-sent its table since the start (or the grace period is over)."""
        return (self.peers_known and not self.awaiting_eor) or now >= self.deadline

    def forget_gateway(self, gateway: IPAddress) -> None:
        """A peer went away for good: its stale paths are no longer a reason to keep forwarding."""
        for prefix, route in list(self.routes.items()):
            remaining = tuple(g for g in route.gateways if g != gateway)
            if not remaining:
                del self.routes[prefix]
            elif remaining != route.gateways:
                self.routes[prefix] = KernelRoute(prefix, remaining)


def qualifies_for_hold(reason: str) -> bool:
    """Whether a session that ended with ExaBGP's down `reason` is a restart worth helping.

    RFC 4724: a TCP close (or reset) is how a restarting speaker disappears; a NOTIFICATION, sent or received,
    ends graceful restart. ExaBGP 4.2 words it "peer reset, message [notification sent (4,0)] error[...]"
    (our hold timer expired: the peer is silent, not restarting, so its routes go at once) or "peer reset,
    message [notification received (6,2)] error[Cease / Administrative Shutdown]" (the peer shut the
    session down on purpose); a plain close is "... [closing connection] error[the TCP connection was closed
    by the remote end]" (its JSON turns the brackets into parentheses). bgpnet's own agent stops ExaBGP with
    SIGKILL when graceful restart is on, so a rolling update shows up here as a plain close and is helped,
    while a dead node (hold timer) is not."""
    return "notification" not in reason


# After a returned peer's End-of-RIB, stale routes go this much later, not at once. ExaBGP 4.2 sends End-of-RIB
# as soon as its Adj-RIB-Out is empty when the session comes up; a freshly started ExaBGP whose session comes
# up before the process API has re-announced its routes therefore sends End-of-RIB *before* them (observed:
# the announcement a few milliseconds later). Sweeping at once would flap that route; what is re-announced
# within the settle time stays. RFC 4724 leaves the helper's timing to the implementation.
EOR_SETTLE_S = 2.0


def family_of(prefix: Prefix) -> str:
    """The address family a prefix belongs to, in ExaBGP's words (as in EndOfRib.family)."""
    return "ipv4 unicast" if prefix.version == 4 else "ipv6 unicast"


@dataclass
class _Held:
    unrefreshed: set[Prefix]
    deadline: float
    restart_time: float
    back: bool = False  # the session is Established again (the peer is re-sending)
    eor: bool = False  # End-of-RIB received for this family: the hold ends at `deadline` (now + EOR_SETTLE_S)


@dataclass(frozen=True)
class HoldOver:
    """One family's hold that ended: the prefixes to withdraw, and whether it ended with End-of-RIB."""

    peer: IPAddress
    family: str
    prefixes: frozenset[Prefix]
    eor: bool


class PeerHolds:
    """Peers' routes held stale while they restart, per address family (RFC 4724 §4.2: End-of-RIB, the
    Forwarding State bit and the families retained at all are each per family)."""

    def __init__(self) -> None:
        self._held: dict[tuple[IPAddress, str], _Held] = {}

    def hold(self, peer: IPAddress, prefixes: Iterable[Prefix], now: float, restart_time: float) -> None:
        """The session with `peer` dropped: keep `prefixes` (its routes of the families it can restart, the
        caller's choice) until `now + restart_time`. A family that drops again before the peer came back keeps
        its first deadline, so flapping cannot hold forever."""
        by_family: dict[str, set[Prefix]] = {}
        for prefix in prefixes:
            by_family.setdefault(family_of(prefix), set()).add(prefix)
        for family, kept in by_family.items():
            current = self._held.get((peer, family))
            if current is not None and not current.back:
                current.unrefreshed |= kept
            else:
                self._held[(peer, family)] = _Held(kept, now + restart_time, restart_time)

    def holding(self, peer: IPAddress) -> bool:
        return any(held_peer == peer for held_peer, _ in self._held)

    def session_up(self, peer: IPAddress, now: float) -> None:
        """The peer is back: the restart timer stops and the peer gets one more restart time to re-send its
        table and End-of-RIB (RFC 4724's selection deferral, with the peer's own figure as the bound)."""
        for (held_peer, _), held in self._held.items():
            if held_peer == peer:
                held.back = True
                held.deadline = now + held.restart_time

    def drop_family(self, peer: IPAddress, family: str) -> frozenset[Prefix]:
        """End the hold of one family at once (the peer's new OPEN says it did not preserve forwarding for
        it): the prefixes to withdraw."""
        held = self._held.pop((peer, family), None)
        return frozenset(held.unrefreshed) if held is not None else frozenset()

    def held_families(self, peer: IPAddress) -> tuple[str, ...]:
        return tuple(family for held_peer, family in self._held if held_peer == peer)

    def refreshed(self, peer: IPAddress, prefixes: Iterable[Prefix]) -> None:
        """`peer` announced or withdrew these prefixes since it came back: they are no longer stale."""
        for prefix in prefixes:
            held = self._held.get((peer, family_of(prefix)))
            if held is not None and held.back:
                held.unrefreshed.discard(prefix)

    def end_of_rib(self, peer: IPAddress, family: str, now: float) -> None:
        """End-of-RIB for `family` from a returned peer: that family's hold ends EOR_SETTLE_S from now (see
        there); the peer's other families wait for their own End-of-RIB."""
        held = self._held.get((peer, family))
        if held is not None and held.back and not held.eor:
            held.eor = True
            held.deadline = min(held.deadline, now + EOR_SETTLE_S)

    def expired(self, now: float) -> list[HoldOver]:
        """Holds whose time is up, removed: a peer that never came back loses all it had in that family, a
        returned one what it did not re-send."""
        done = [HoldOver(peer, family, frozenset(h.unrefreshed), h.eor)
                for (peer, family), h in self._held.items() if now >= h.deadline]
        for over in done:
            del self._held[(over.peer, over.family)]
        return done

    def forget(self, peer: IPAddress) -> None:
        """The peer is gone for good (Node deleted, peer removed, torn down): no hold."""
        for key in [key for key in self._held if key[0] == peer]:
            del self._held[key]

    def clear(self) -> None:
        self._held.clear()

    def next_deadline(self) -> float | None:
        return min((h.deadline for h in self._held.values()), default=None)

    def stale_count(self) -> int:
        return sum(len(h.unrefreshed) for h in self._held.values())
