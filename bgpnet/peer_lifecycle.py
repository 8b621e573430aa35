"""What happens to a peer's routes over the life of its session: graceful restart in both roles, max-prefix
teardowns and the start-up stale period.

Restarts keep forwarding (graceful restart, RFC 4724; the bookkeeping is in bgpnet.stale):
- restarting: routes already in the kernel when the agent starts (left by its previous run), and routes learned
  before an ExaBGP restart, are kept as *stale* until every peer has sent End-of-RIB or the start-up grace
  period ends; then whatever was not learned again is swept. (On stop, the agent kills ExaBGP without a
  NOTIFICATION, see Speaker.stop, so that peers keep our routes for our Restart Time.)
- helper: when a peer that advertised graceful restart drops its session with a plain TCP close, its routes
  stay for its Restart Time; what it re-sends before its End-of-RIB stays, the rest is then withdrawn. A
  NOTIFICATION (including our hold timer expiring on a silent, dead peer) ends graceful restart, as RFC 4724
  says, and a Node deleted from the API loses its routes at once, whatever its sessions do.

A peer over its max-prefix limit with action `teardown` is disabled (left out of the speaker's peers) until its
restart time is over, like a Cisco `maximum-prefix ... restart N`.

A peer whose BFD session went from Up to Down is declared dead (RFC 5882 §3.2): its routes go at once, whatever
graceful restart would keep (§4.3: BFD saw the forwarding path fail, so there is nothing to keep forwarding
on), and it is disabled until its BFD session is Up again; leaving it out of the speaker's peers is what tears
its BGP session down through ExaBGP. Its BFD session keeps running meanwhile (bgpnet.state.SpeakerIntent.bfd).

No I/O and no lock of its own: the agent calls it under its lock, with the RIB of the moment (an ExaBGP restart
replaces the RIB) and the import policy of each peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping

from bgpnet.config import TEARDOWN, WARN
from bgpnet.model import IPAddress, KernelRoute
from bgpnet.policy import BFD_DOWN, MAX_PREFIX, ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib
from bgpnet.speaker.events import EndOfRib, GracefulRestart, PeerOpen
from bgpnet.stale import PeerHolds, StaleRoutes, family_of, qualifies_for_hold

log = logging.getLogger("bgpnet.agent")

PolicyFor = Callable[[IPAddress], ImportPolicy]


class PeerLifecycle:
    def __init__(self, *, graceful_restart: bool, startup_grace_period: float) -> None:
        self._graceful_restart = graceful_restart
        self._grace_period = startup_grace_period
        self.stale = StaleRoutes()
        # Helper role: each peer's graceful restart capability (from its latest OPEN) and the holds running.
        self._graceful: dict[IPAddress, GracefulRestart | None] = {}
        self._holds = PeerHolds()
        # Peers torn down for max-prefix: address -> when they may come back.
        self._disabled: dict[IPAddress, float] = {}
        self._limit_warned: set[IPAddress] = set()
        # Peers declared dead by BFD, until their BFD session is Up again.
        self._bfd_down: set[IPAddress] = set()

    # --- session events -------------------------------------------------------------------------------------
    def opened(self, event: PeerOpen, rib: Rib, policy_for: PolicyFor) -> None:
        """The peer's OPEN: remember its graceful restart capability, and end at once the stale hold of every
        family for which it did not preserve forwarding (RFC 4724 §4.2: Forwarding State bit clear, family
        no longer listed, or no capability at all)."""
        graceful = event.graceful_restart
        self._graceful[event.peer] = graceful
        for family in self._holds.held_families(event.peer):
            if graceful is None or not graceful.families.get(family, False):
                prefixes = self._holds.drop_family(event.peer, family)
                self._sweep(event.peer, prefixes, f"forwarding not preserved for {family}", rib, policy_for)

    def established(self, peer: IPAddress, now: float) -> None:
        self._holds.session_up(peer, now)

    def went_down(self, peer: IPAddress, reason: str, *, configured: bool, rib: Rib, policy_for: PolicyFor,
                  now: float) -> None:
        """The peer's session ended (not our speaker's): hold its routes for its Restart Time if the drop
        qualifies for graceful restart, else drop them now (ExaBGP withdraws nothing of a dropped session)."""
        graceful = self._graceful.get(peer)
        if (self._graceful_restart and configured and graceful is not None and graceful.restart_time
                and graceful.families and qualifies_for_hold(reason)):
            # RFC 4724 §4.2: only the families listed in the peer's capability are retained; the others (the
            # peer cannot keep forwarding them across a restart) go at once.
            prefixes = rib.prefixes(peer)
            kept = frozenset(p for p in prefixes if family_of(p) in graceful.families)
            self._holds.hold(peer, kept, now, graceful.restart_time)
            if prefixes - kept:
                self._sweep(peer, prefixes - kept, "family not in graceful restart capability", rib, policy_for)
            log.info("session down, graceful restart: routes kept as stale peer=%s reason=%s routes=%d "
                     "families=%s restart_time=%ds", peer, reason, len(kept), ",".join(graceful.families),
                     graceful.restart_time)
            return
        dropped = self.drop(peer, rib)
        log.info("session down peer=%s reason=%s routes_removed=%d", peer, reason, dropped)

    def drop(self, peer: IPAddress, rib: Rib) -> int:
        """The peer's routes go now, whatever graceful restart would keep (a NOTIFICATION, an RFC 7606
        session reset, a dead peer); how many the RIB held."""
        self._holds.forget(peer)
        self.stale.forget_gateway(peer)
        return rib.drop_peer(peer)

    def received(self, peer: IPAddress, prefixes: Iterable[Prefix]) -> None:
        """Prefixes the peer (re-)announced: no longer stale in its hold."""
        if self._holds.holding(peer):
            self._holds.refreshed(peer, prefixes)

    def end_of_rib(self, event: EndOfRib, now: float) -> None:
        if event.complete:  # every family of the session ended: its whole table is in
            self.stale.awaiting_eor.discard(event.peer)
        log.debug("end-of-rib peer=%s family=%s complete=%s held=%s", event.peer, event.family, event.complete,
                  self._holds.holding(event.peer))
        self._holds.end_of_rib(event.peer, event.family, now)

    def speaker_restarted(self, learned: dict[Prefix, KernelRoute], peers: Collection[IPAddress],
                          now: float) -> None:
        """Our ExaBGP restarted: everything learned is void until re-learned, but forwarding goes on
        meanwhile, so it becomes stale (what peers' holds kept is in `learned` too)."""
        self._holds.clear()
        if learned:
            self.start_stale_period(learned, peers, now)
            log.warning("speaker restarted: keeping %d routes as stale until peers re-send", len(learned))

    # --- disabled peers: max-prefix and BFD ----------------------------------------------------------------
    def disabled(self, peer: IPAddress) -> str | None:
        """Why the peer is left out of the speaker now (its in-flight UPDATEs are refused), None if it is not."""
        if peer in self._bfd_down:
            return BFD_DOWN
        return MAX_PREFIX if peer in self._disabled else None

    def bfd_failed(self, peer: IPAddress, rib: Rib) -> int:
        """BFD declared the path to the peer dead: its routes go now, held ones included, and it stays out of
        the speaker until `bfd_up`; how many routes the RIB held."""
        self._bfd_down.add(peer)
        return self.drop(peer, rib)

    def bfd_up(self, peer: IPAddress) -> bool:
        """The peer's BFD session is Up: its BGP session may come back. Whether it had been held down."""
        if peer not in self._bfd_down:
            return False
        self._bfd_down.discard(peer)
        return True

    def bfd_held(self) -> frozenset[IPAddress]:
        return frozenset(self._bfd_down)

    def bfd_sessions(self, peers: Collection[IPAddress]) -> bool:
        """The peers that have a BFD session now: a peer that lost its session (BFD switched off for it, its
        Node deleted) can never come Up again, so it is no longer held down. Whether one was released."""
        released = self._bfd_down - set(peers)
        self._bfd_down -= released
        return bool(released)

    def check_prefix_limit(self, peer: IPAddress, policy: ImportPolicy, rib: Rib, now: float) -> None:
        action = rib.over_limit.get(peer)
        if action is None:
            self._limit_warned.discard(peer)
        elif action == TEARDOWN:
            rib.over_limit.pop(peer, None)
            self._disabled[peer] = now + policy.restart_after
            self.stale.forget_gateway(peer)
            self._holds.forget(peer)
            log.warning("max-prefix exceeded peer=%s limit=%d action=teardown restart_after=%.0fs", peer,
                        policy.max_prefixes, policy.restart_after)
        elif action == WARN and peer not in self._limit_warned:
            self._limit_warned.add(peer)
            log.warning("max-prefix exceeded peer=%s limit=%d accepted=%d action=warn", peer,
                        policy.max_prefixes, rib.accepted(peer))

    def expire_disabled(self, now: float) -> frozenset[IPAddress]:
        """The peers left out of the speaker: still torn down for max-prefix (those whose time is over come
        back) or declared dead by BFD."""
        for peer, until in list(self._disabled.items()):
            if now >= until:
                del self._disabled[peer]
                log.info("re-enabling peer after max-prefix teardown peer=%s", peer)
        return frozenset(self._disabled) | frozenset(self._bfd_down)

    # --- the reconcile round -----------------------------------------------------------------------------
    def adopt_leftovers(self, routes: dict[Prefix, KernelRoute], now: float) -> None:
        """At start: what the previous run left in the kernel is stale. Whose End-of-RIB to wait for is not
        known until the first round that knows our own Node (see `peers_known`)."""
        self.start_stale_period(routes, (), now)
        self.stale.peers_known = False

    def start_stale_period(self, routes: dict[Prefix, KernelRoute], peers: Collection[IPAddress],
                           now: float) -> None:
        """Keep `routes` until every peer has re-sent its table (End-of-RIB) or the grace period ends; routes
        still kept from an earlier, unfinished stale period stay too."""
        previous = self.stale
        if previous.active(now):
            routes = {**previous.routes, **routes}
        self.stale = StaleRoutes(routes=routes, awaiting_eor=set(peers), deadline=now + self._grace_period,
                                 peers_known=previous.peers_known or bool(peers))

    def peers_known(self, peers: Collection[IPAddress]) -> None:
        """The first round that knows our own Node knows the peers: they are the ones to wait for."""
        if not self.stale.peers_known:
            self.stale.peers_known = True
            self.stale.awaiting_eor = set(peers)

    def sweep_expired_holds(self, rib: Rib, policy_for: PolicyFor, now: float) -> None:
        for over in self._holds.expired(now):
            why = f"End-of-RIB {over.family}" if over.eor else f"restart time over {over.family}"
            self._sweep(over.peer, over.prefixes, why, rib, policy_for)

    def stale_for_round(self, rib: Rib, now: float) -> tuple[Mapping[Prefix, KernelRoute], bool]:
        """The stale routes to keep this round, and whether the stale period has just ended (its routes that
        were not learned again then leave the kernel)."""
        if self.stale.active(now):
            return dict(self.stale.routes), False
        if not self.stale.routes:
            return {}, False
        log.info("stale period over: sweeping routes not re-learned count=%d",
                 sum(1 for p in self.stale.routes if p not in rib.routes))
        self.stale = StaleRoutes()
        return {}, True

    def forget(self, gone: Iterable[IPAddress]) -> None:
        """Peers no longer configured (their Node was deleted): nothing of theirs is waited for any more."""
        for peer in gone:
            self._holds.forget(peer)
            self._graceful.pop(peer, None)
            self.stale.forget_gateway(peer)
            self.stale.awaiting_eor.discard(peer)

    def next_deadline(self) -> float | None:
        """The earliest moment something here changes by itself: the stale period ends, a torn-down peer may
        come back, a graceful restart hold ends."""
        deadlines = [self.stale.deadline] if self.stale.routes else []
        deadlines += self._disabled.values()
        hold = self._holds.next_deadline()
        if hold is not None:
            deadlines.append(hold)
        return min(deadlines, default=None)

    def stale_pending(self, now: float) -> bool:
        return self.stale.active(now)

    def synced(self, now: float) -> bool:
        return self.stale.synced(now)

    def _sweep(self, peer: IPAddress, prefixes: frozenset[Prefix], why: str, rib: Rib,
               policy_for: PolicyFor) -> None:
        """A graceful restart hold ended: withdraw what the peer did not re-send."""
        rib.update(peer, (), prefixes, policy_for(peer))
        log.info("graceful restart over, stale routes swept peer=%s why=%s count=%d", peer, why, len(prefixes))
