"""The per-node agent: wires node source, speaker and route table around the pure desired-state code.

Three sources of change feed one reconcile loop: the node source (Node added, changed, deleted), the speaker
(sessions up/down, UPDATEs) and a periodic timer. Event handlers only record what happened and wake the loop;
the loop computes the whole desired state and hands it to each adapter, which applies only the difference. A
missed or coalesced wake-up therefore costs nothing but a little latency, and the periodic full re-apply heals
anything changed behind bgpnet's back.

Restarts keep forwarding: routes already in the kernel when the agent starts (left by its previous run), and
routes learned before an ExaBGP restart, are kept as *stale* until every peer has sent End-of-RIB or the
start-up grace period ends; then whatever was not learned again is swept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol

from bgpnet import cniconf
from bgpnet.config import AgentConfig
from bgpnet.model import BgpPeer, IPAddress, IPNetwork, KernelRoute, NodeInfo
from bgpnet.rib import Rib
from bgpnet.speaker.events import (
    BadMessage,
    EndOfRib,
    PeerDown,
    PeerUp,
    RoutesReceived,
    SpeakerEvent,
    SpeakerRestarted,
)
from bgpnet.state import SpeakerIntent, import_policy, router_id, speaker_intent

log = logging.getLogger("bgpnet.agent")


class NodeSourcePort(Protocol):
    def run(self, stop: threading.Event) -> None: ...


class SpeakerPort(Protocol):
    def start(self) -> None: ...
    def set(self, peers: Collection[BgpPeer], announcements: Collection[IPNetwork]) -> None: ...
    def stop(self) -> None: ...


class RouteTablePort(Protocol):
    def apply(self, desired: Collection[KernelRoute]) -> object: ...
    def resync(self, desired: Collection[KernelRoute]) -> object: ...
    def dump(self) -> Mapping[IPNetwork, KernelRoute]: ...
    def close(self) -> None: ...


@dataclass
class StaleRoutes:
    """Routes kept (not yet swept) while peers re-send their tables after a restart."""

    routes: dict[IPNetwork, KernelRoute] = field(default_factory=dict)
    awaiting_eor: set[IPAddress] = field(default_factory=set)
    deadline: float = 0.0
    # False until the peer set is known (the first Node list after a start): until then nobody has been
    # asked for End-of-RIB, so an empty `awaiting_eor` does not yet mean "everyone has re-sent".
    peers_known: bool = True

    def active(self, now: float) -> bool:
        waiting = bool(self.awaiting_eor) or not self.peers_known
        return bool(self.routes) and waiting and now < self.deadline

    def forget_gateway(self, gateway: IPAddress) -> None:
        """A peer went away for good: its stale paths are no longer a reason to keep forwarding."""
        for prefix, route in list(self.routes.items()):
            remaining = tuple(g for g in route.gateways if g != gateway)
            if not remaining:
                del self.routes[prefix]
            elif remaining != route.gateways:
                self.routes[prefix] = KernelRoute(prefix, remaining)


@dataclass
class AgentCounters:
    """Plain counters the metrics layer and `bgpnet status` read."""

    bad_speaker_messages: int = 0
    route_errors: int = 0
    reconciles: int = 0
    speaker_restarts: int = 0
    last_errors: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.last_errors = [*self.last_errors[-9:], message]


class Agent:
    def __init__(self, config: AgentConfig, node_name: str, *, cni_conf_dir: Path,
                 make_node_source: Callable[[Callable[[Mapping[str, NodeInfo]], None]], NodeSourcePort],
                 make_speaker: Callable[[IPv4Address, Callable[[SpeakerEvent], None]], SpeakerPort],
                 route_table: RouteTablePort, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.node_name = node_name
        self.cni_conf_dir = cni_conf_dir
        self.counters = AgentCounters()
        self.rib = Rib()
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._nodes: Mapping[str, NodeInfo] = {}
        self._intent = SpeakerIntent(frozenset(), frozenset())
        self._up: set[IPAddress] = set()
        self._stale = StaleRoutes()
        self._node_source = make_node_source(self._on_nodes)
        # The speaker needs a BGP identifier, which comes from our own Node: it is created on the first
        # reconcile that knows that Node.
        self._make_speaker = make_speaker
        self._speaker: SpeakerPort | None = None
        self._routes = route_table
        self._last_resync = 0.0
        self._speaker_starts = 0
        self._started = False

    # --- event handlers: record and wake the loop -------------------------------------------------------
    def _on_nodes(self, nodes: Mapping[str, NodeInfo]) -> None:
        with self._lock:
            self._nodes = nodes
        self._wake.set()

    def _on_speaker_event(self, event: SpeakerEvent) -> None:
        with self._lock:
            self._record_speaker_event(event)
        self._wake.set()

    def _record_speaker_event(self, event: SpeakerEvent) -> None:
        if isinstance(event, RoutesReceived):
            policy = import_policy(self.config, self._nodes.get(self.node_name))
            for rejected in self.rib.update(event.peer, event.announced, event.withdrawn, policy):
                log.info("route rejected peer=%s prefix=%s reason=%s", rejected.peer, rejected.prefix,
                         rejected.reason)
        elif isinstance(event, PeerUp):
            self._up.add(event.peer)
            log.info("session up peer=%s", event.peer)
        elif isinstance(event, PeerDown):
            self._up.discard(event.peer)
            if event.local:
                # Our ExaBGP died, not the peer: keep its routes (SpeakerRestarted turns them into stale ones).
                log.info("session down with our speaker peer=%s reason=%s", event.peer, event.reason)
                return
            # ExaBGP does not withdraw a peer's routes when its session drops: a dead node's routes go now.
            dropped = self.rib.drop_peer(event.peer)
            self._stale.forget_gateway(event.peer)
            log.info("session down peer=%s reason=%s routes_removed=%d", event.peer, event.reason, dropped)
        elif isinstance(event, EndOfRib):
            self._stale.awaiting_eor.discard(event.peer)
        elif isinstance(event, SpeakerRestarted):
            # Sent for every ExaBGP start, the first one included.
            if self._speaker_starts:
                self.counters.speaker_restarts += 1
            self._speaker_starts += 1
            # Everything learned is void until re-learned, but forwarding goes on meanwhile: keep it as stale.
            learned = dict(self.rib.routes)
            self.rib = Rib()
            if learned:
                self._start_stale_period(learned)
                log.warning("speaker restarted: keeping %d routes as stale until peers re-send", len(learned))
        elif isinstance(event, BadMessage):
            self.counters.bad_speaker_messages += 1
            self.counters.error(f"bad speaker message: {event.error}")
            log.warning("bad speaker message error=%s", event.error)

    def _start_stale_period(self, routes: dict[IPNetwork, KernelRoute]) -> None:
        """Keep `routes` until every peer has re-sent its table (End-of-RIB) or the grace period ends; routes
        still kept from an earlier, unfinished stale period stay too."""
        previous = self._stale
        if previous.active(self._clock()):
            routes = {**previous.routes, **routes}
        self._stale = StaleRoutes(routes=routes,
                                  awaiting_eor={p.address for p in self._intent.peers},
                                  deadline=self._clock() + self.config.startup_grace_period,
                                  peers_known=previous.peers_known or bool(self._intent.peers))

    # --- the loop ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Adopt what the previous run left in the kernel as stale, then start the speaker and node source."""
        leftovers = dict(self._routes.dump())
        with self._lock:
            self._start_stale_period(leftovers)
            self._stale.peers_known = False
        log.info("agent starting node=%s stale_routes=%d", self.node_name, len(leftovers))
        threading.Thread(target=self._node_source.run, args=(self._stop,), name="node-source",
                         daemon=True).start()
        self._started = True

    def run(self) -> None:
        """Reconcile until stop() is called (blocking)."""
        if not self._started:
            self.start()
        while not self._stop.is_set():
            self._wake.wait(timeout=self._next_timeout())
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.reconcile()
            except Exception:  # one bad round must not kill the agent: log, count, retry next round
                log.exception("reconcile failed")
                self.counters.error("reconcile failed (see log)")
                time.sleep(0.5)

    def _next_timeout(self) -> float:
        until_resync = self._last_resync + self.config.route_sync_period - self._clock()
        timeout = max(0.05, min(until_resync, self.config.route_sync_period))
        if self._stale.routes:
            timeout = min(timeout, max(0.05, self._stale.deadline - self._clock()))
        return timeout

    def reconcile(self) -> None:
        now = self._clock()
        with self._lock:
            nodes = self._nodes
            me = nodes.get(self.node_name)
            intent = speaker_intent(self.config, me, nodes)
            if me is not None and not self._stale.peers_known:
                self._stale.peers_known = True
                self._stale.awaiting_eor = {p.address for p in intent.peers}
            if intent != self._intent:
                self._forget_removed_peers(intent)
                self._intent = intent
            desired = dict(self.rib.routes)
            if self._stale.active(now):
                for prefix, route in self._stale.routes.items():
                    desired.setdefault(prefix, route)
            elif self._stale.routes:
                log.info("stale period over: sweeping routes not re-learned count=%d",
                         sum(1 for p in self._stale.routes if p not in desired))
                self._stale = StaleRoutes()
        if me is not None and self._speaker is None:
            self._speaker = self._make_speaker(router_id(me), self._on_speaker_event)
            self._speaker.start()
        if self._speaker is not None:
            self._speaker.set(intent.peers, intent.announcements)
        if me is not None and me.pod_cidrs and cniconf.write_conflist(self.cni_conf_dir, me.pod_cidrs,
                                                                      self.config.cni):
            log.info("wrote CNI conflist dir=%s pod_cidrs=%s", self.cni_conf_dir,
                     ",".join(map(str, me.pod_cidrs)))
        if now - self._last_resync >= self.config.route_sync_period:
            result = self._routes.resync(desired.values())
            self._last_resync = now
        else:
            result = self._routes.apply(desired.values())
        self._count_route_errors(result)
        self.counters.reconciles += 1

    def _forget_removed_peers(self, intent: SpeakerIntent) -> None:
        """A peer that is no longer configured (its Node was deleted) loses its routes at once, without
        waiting for a hold timer to expire."""
        wanted = {p.address for p in intent.peers}
        for peer in self.rib.peers():
            if peer not in wanted:
                dropped = self.rib.drop_peer(peer)
                log.info("peer removed peer=%s routes_removed=%d", peer, dropped)
        for gone in {p.address for p in self._intent.peers} - wanted:
            self._stale.forget_gateway(gone)
            self._stale.awaiting_eor.discard(gone)
            self._up.discard(gone)

    def _count_route_errors(self, result: object) -> None:
        errors = getattr(result, "errors", ())
        if errors:
            self.counters.route_errors += len(errors)
            for error in errors[:3]:
                self.counters.error(f"route error: {error}")
            log.warning("route errors count=%d first=%s", len(errors), errors[0])

    def stop(self) -> None:
        """Stop the loops and the speaker. Kernel routes stay: pods keep forwarding until the next run."""
        self._stop.set()
        self._wake.set()
        if self._speaker is not None:
            self._speaker.stop()
        self._routes.close()

    # --- read-only views for status and metrics ---------------------------------------------------------
    def sessions_up(self) -> frozenset[IPAddress]:
        with self._lock:
            return frozenset(self._up)

    def intent(self) -> SpeakerIntent:
        with self._lock:
            return self._intent

