"""The per-node agent: wires node source, speaker and route table around the pure desired-state code.

Three sources of change feed one reconcile loop: the node source (Node added, changed, deleted), the speaker
(sessions up/down, UPDATEs) and a periodic timer. Event handlers only record what happened and wake the loop
(speaker events are queued and applied to the RIB by the loop itself, so the RIB has one writer); the loop
computes the whole desired state and hands it to each adapter, which applies only the difference. A missed or
coalesced wake-up therefore costs nothing but a little latency, and the periodic full re-apply heals
anything changed behind bgpnet's back.

Two responsibilities live in their own modules, called from here under the agent's lock: what happens to a
peer's routes over its session's life (graceful restart, max-prefix, the start-up stale period:
bgpnet.peer_lifecycle) and getting the desired routes into the kernel (bgpnet.route_sync).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address
from pathlib import Path

from bgpnet import cniconf, node_events
from bgpnet.agent_passwords import PasswordCache
from bgpnet.agent_ports import (
    BfdPort,
    LoadBalancerPort,
    NextHopPort,
    NodeSourcePort,
    OutgoingNatPort,
    RouteTablePort,
    ServiceSourcePort,
    SpeakerPort,
)
from bgpnet.agent_records import AgentCounters
from bgpnet.agent_snapshot import AgentView, assemble
from bgpnet.bfd.process import BfdChange
from bgpnet.config import AgentConfig, PasswordRef
from bgpnet.model import BfdPeer, IPAddress, Md5Password, NodeInfo, ServiceInfo
from bgpnet.nat.ruleset import enabled as nat_outgoing_enabled
from bgpnet.node_readiness import gone_nodes, next_change, not_ready_since
from bgpnet.peer_lifecycle import PeerLifecycle
from bgpnet.policy import MAX_PREFIX, ImportPolicy
from bgpnet.rib import Rib
from bgpnet.route_sync import RouteSync
from bgpnet.routes.table import ApplyResult
from bgpnet.service_routes import ServiceTable
from bgpnet.snapshot import AgentSnapshot, LoopStatus
from bgpnet.speaker.events import (
    BadMessage,
    EndOfRib,
    Malformed,
    PeerDown,
    PeerOpen,
    PeerUp,
    RoutesReceived,
    SessionReset,
    SpeakerEvent,
    SpeakerRestarted,
)
from bgpnet.state import (
    SpeakerIntent,
    import_policy,
    node_peer_specs,
    other_family_lookups,
    required_lookups,
    router_id,
    speaker_intent,
)

# Re-exported: callers and tests import the seams from here.
__all__ = ["Agent", "AgentCounters", "BfdPort", "NextHopPort", "NodeSourcePort", "RouteTablePort", "SpeakerPort"]

log = logging.getLogger("bgpnet.agent")

# Speaker events (UPDATEs, mostly) queued for the loop before the speaker's reader waits for it.
SPEAKER_QUEUE_LIMIT = 4096

# Longest wait for Services and EndpointSlices to be listed before the speaker starts without them.
SERVICE_SYNC_WAIT = 10.0

# The Service source's callback: changed Services (None: deleted), changed "has a ready local endpoint" facts.
ServiceCallback = Callable[[Mapping[str, ServiceInfo | None], Mapping[str, bool]], None]

# Malformed UPDATEs are logged (with their bytes) once per (peer, reason); a peer repeating one is only counted.
_MALFORMED_LOGGED_MAX = 1024


class Agent:
    def __init__(self, config: AgentConfig, node_name: str, *, cni_conf_dir: Path,
                 make_node_source: Callable[[Callable[[Mapping[str, NodeInfo]], None]], NodeSourcePort],
                 make_speaker: Callable[[IPv4Address, Callable[[SpeakerEvent], None]], SpeakerPort],
                 route_table: RouteTablePort, clock: Callable[[], float] = time.monotonic,
                 read_password: Callable[[PasswordRef], Md5Password] | None = None,
                 next_hops: NextHopPort | None = None,
                 set_network_available: Callable[[], None] | None = None,
                 outgoing_nat: OutgoingNatPort | None = None,
                 record_event: Callable[[node_events.NodeEvent], None] | None = None,
                 make_bfd: Callable[[Callable[[BfdChange], None]], BfdPort] | None = None,
                 make_service_source: Callable[[ServiceCallback], ServiceSourcePort] | None = None,
                 load_balancer: LoadBalancerPort | None = None) -> None:
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
        self._speaker_events: deque[SpeakerEvent | BfdChange] = deque()
        self._drained = threading.Event()
        self._peers = PeerLifecycle(graceful_restart=config.graceful_restart.enabled,
                                    startup_grace_period=config.startup_grace_period)
        # Nodes seen NotReady, and since when (only used with notReadyGracePeriod > 0).
        self._not_ready: dict[str, float] = {}
        # The Node's NetworkUnavailable=False condition: reported once per run, after the first full sync.
        self._set_network_available = set_network_available
        self._network_reported = False
        self._network_retry_at = 0.0
        self._node_source = make_node_source(self._on_nodes)
        # The speaker needs a BGP identifier, which comes from our own Node: it is created on the first
        # reconcile that knows that Node.
        self._make_speaker = make_speaker
        self._speaker: SpeakerPort | None = None
        # The BFD process is started the first time a peer has BFD enabled.
        self._make_bfd = make_bfd
        self._bfd: BfdPort | None = None
        self._bfd_wanted: frozenset[BfdPeer] = frozenset()
        self._routes = RouteSync(route_table, next_hops, period=config.route_sync_period)
        self._speaker_starts = 0
        self._started = False
        # Observability: the wall-clock start, the loop's last proof of progress, what route applies did.
        self._started_at = time.time()
        self._heartbeat = clock()
        self._node_thread: threading.Thread | None = None
        # ToR peering: MD5 passwords (last good value per reference), kernel lookups, what was last logged
        # (log once per change).
        self._passwords = PasswordCache(read_password, config.route_sync_period)
        self._next_hops = next_hops
        self._malformed_logged: set[tuple[IPAddress, str]] = set()
        self._problems: tuple[str, ...] = ()
        self._nat = outgoing_nat
        # Kubernetes Events on our Node (session up/down, refused routes, config problems); emitting never
        # blocks (bgpnet.kube.events writes from its own thread).
        self._record_event = record_event or (lambda event: None)
        # Service addresses (only when the config announces some): changes wait here for the loop, which
        # re-decides the changed Services alone (bgpnet.service_routes).
        self._services = ServiceTable()
        self._service_changes: dict[str, ServiceInfo | None] = {}
        self._local_changes: dict[str, bool] = {}
        self._service_source: ServiceSourcePort | None = None
        self._service_thread: threading.Thread | None = None
        self._me_known_at: float | None = None
        if config.services.enabled and make_service_source is not None:
            self._service_source = make_service_source(self._on_services)
        # The LoadBalancer allocator campaigns for its Lease in its own thread; the agent only runs it.
        self._load_balancer = load_balancer
        self._lb_thread: threading.Thread | None = None

    # --- event handlers: record and wake the loop -------------------------------------------------------
    def _on_nodes(self, nodes: Mapping[str, NodeInfo]) -> None:
        with self._lock:
            self._nodes = nodes
            self._not_ready = not_ready_since(self._not_ready, nodes, self._clock())
        self._wake.set()

    def _on_services(self, services: Mapping[str, ServiceInfo | None], local: Mapping[str, bool]) -> None:
        with self._lock:
            self._service_changes.update(services)
            self._local_changes.update(local)
        self._wake.set()

    def _on_speaker_event(self, event: SpeakerEvent) -> None:
        # The speaker's reader thread only queues (deque appends are atomic); the loop applies the events. If
        # the reader took the agent lock per event, a full-table burst would starve the loop of that lock (the
        # reader re-takes it before the woken loop thread runs) and no route would be installed before the
        # whole table was in.
        self._speaker_events.append(event)
        self._wake.set()
        # Backpressure: past the limit the reader waits for the loop, so ExaBGP waits for us and TCP for the
        # peer, instead of the queue growing without bound behind a slow or wedged loop.
        while len(self._speaker_events) >= SPEAKER_QUEUE_LIMIT and not self._stop.is_set():
            self._drained.wait(0.1)
            self._drained.clear()

    def _on_bfd_change(self, change: BfdChange) -> None:
        # Queued with the speaker's events, so the RIB keeps one writer; never waits (a BFD down must not
        # queue behind a full table).
        self._speaker_events.append(change)
        self._wake.set()

    def apply_speaker_events(self) -> None:
        """Apply the speaker events queued so far (the loop does this at the start of every round)."""
        with self._lock:
            self._apply_speaker_events()

    def _apply_speaker_events(self) -> None:
        """Under the lock: the events queued when this call began (not those arriving meanwhile, so a long burst
        is installed in rounds as it arrives)."""
        for _ in range(len(self._speaker_events)):
            self._record_speaker_event(self._speaker_events.popleft())
        self._drained.set()

    def _record_speaker_event(self, event: SpeakerEvent | BfdChange) -> None:
        if isinstance(event, RoutesReceived) and event.malformed is not None:
            self._count_malformed(event.peer, event.malformed)
        if isinstance(event, RoutesReceived):
            disabled = self._peers.disabled(event.peer)
            if disabled is not None:
                # Torn down for max-prefix or declared dead by BFD; UPDATEs still in flight are refused whole.
                for rejected in self.rib.reject_all(event.peer, event.announced, disabled):
                    self.counters.rejected[(rejected.peer, rejected.reason)] += 1
                return
            policy = self._policy_for(event.peer)
            refused: set[str] = set()
            for rejected in self.rib.update(event.peer, event.announced, event.withdrawn, policy):
                self.counters.rejected[(rejected.peer, rejected.reason)] += 1
                if rejected.reason != MAX_PREFIX:
                    log.info("route rejected peer=%s prefix=%s reason=%s", rejected.peer, rejected.prefix,
                             rejected.reason)
                    refused.add(rejected.reason)
            for reason in sorted(refused):  # one Event per reason and UPDATE, not one per refused prefix
                self._record_event(node_events.route_refused(str(event.peer), reason))
            self._peers.received(event.peer, [r.prefix for r in event.announced])
            self._peers.check_prefix_limit(event.peer, policy, self.rib, self._clock())
        elif isinstance(event, SessionReset):
            # RFC 7606 session reset: nothing the peer sent can be trusted any more, and the NOTIFICATION that
            # ends the session also ends graceful restart, so its routes go now (ExaBGP tears it down).
            self._count_malformed(event.peer, event.malformed)
            dropped = self._peers.drop(event.peer, self.rib)
            log.warning("session reset for a malformed UPDATE peer=%s routes_removed=%d", event.peer, dropped)
        elif isinstance(event, PeerOpen):
            self._record_open(event)
        elif isinstance(event, PeerUp):
            self._up.add(event.peer)
            self._peers.established(event.peer, self._clock())
            if self._next_hops is not None:
                self._next_hops.invalidate()  # a new path may change how next hops resolve
            self.counters.session_changes[(event.peer, "established")] += 1
            log.info("session up peer=%s", event.peer)
            self._record_event(node_events.session_up(str(event.peer), self._peer_asn(event.peer)))
        elif isinstance(event, PeerDown):
            self._up.discard(event.peer)
            self.counters.session_changes[(event.peer, "down")] += 1
            self._record_event(node_events.session_down(str(event.peer), self._peer_asn(event.peer), event.reason))
            if event.local:
                # Our ExaBGP died, not the peer: keep its routes (SpeakerRestarted turns them into stale ones).
                log.info("session down with our speaker peer=%s reason=%s", event.peer, event.reason)
                return
            self._peers.went_down(event.peer, event.reason, rib=self.rib, policy_for=self._policy_for,
                                  configured=any(p.address == event.peer for p in self._intent.peers),
                                  now=self._clock())
        elif isinstance(event, EndOfRib):
            self._peers.end_of_rib(event, self._clock())
        elif isinstance(event, SpeakerRestarted):
            # Sent for every ExaBGP start, the first one included.
            if self._speaker_starts:
                self.counters.speaker_restarts += 1
            self._speaker_starts += 1
            # Everything learned is void until re-learned, but forwarding goes on meanwhile: keep it as stale.
            learned = dict(self.rib.routes)
            self.rib = Rib()
            self._peers.speaker_restarted(learned, self._peer_addresses(), self._clock())
        elif isinstance(event, BfdChange):
            self._record_bfd_change(event)
        elif isinstance(event, BadMessage):
            self.counters.bad_speaker_messages += 1
            self.counters.error(f"bad speaker message: {event.error}")
            log.warning("bad speaker message error=%s", event.error)

    def _record_bfd_change(self, change: BfdChange) -> None:
        self.counters.bfd_changes[(change.peer, change.new)] += 1
        if change.failed:
            # The next round leaves the peer out of the speaker: ExaBGP then tears its BGP session down.
            dropped = self._peers.bfd_failed(change.peer, self.rib)
            log.warning("BFD session down: peer declared dead, BGP session torn down peer=%s diag=%d "
                        "routes_removed=%d", change.peer, change.diag, dropped)
            self.counters.error(f"BFD session down for {change.peer} (diag {change.diag})")
            self._record_event(node_events.bfd_down(str(change.peer), change.diag))
        elif change.new == "Up" and self._peers.bfd_up(change.peer):
            log.info("BFD session up again: BGP session restored peer=%s", change.peer)
            self._record_event(node_events.bfd_up(str(change.peer)))

    def _policy_for(self, peer: IPAddress) -> ImportPolicy:
        return self._intent.policy_for(peer) or import_policy(self.config, self._nodes.get(self.node_name),
                                                              self._nodes)

    def _peer_addresses(self) -> frozenset[IPAddress]:
        return frozenset(p.address for p in self._intent.peers)

    def _peer_asn(self, peer: IPAddress) -> int:
        return next((p.asn for p in self._intent.peers if p.address == peer), 0)

    def _count_malformed(self, peer: IPAddress, malformed: Malformed) -> None:
        self.counters.malformed[(peer, malformed.action)] += 1
        key = (peer, malformed.reason)
        if key in self._malformed_logged:
            return
        if len(self._malformed_logged) >= _MALFORMED_LOGGED_MAX:
            self._malformed_logged.clear()
        self._malformed_logged.add(key)
        self.counters.error(f"malformed UPDATE from {peer}: {malformed.reason} ({malformed.action})")
        log.warning("malformed UPDATE peer=%s action=%s reason=%s offending=%s", peer, malformed.action,
                    malformed.reason, malformed.offending.hex())

    def _record_open(self, event: PeerOpen) -> None:
        if event.malformed:
            # ExaBGP refuses the session with a NOTIFICATION; nothing in this OPEN is to be believed.
            self.counters.bad_speaker_messages += 1
            self.counters.error(f"bad speaker message: malformed OPEN: {event.malformed}")
            log.warning("malformed OPEN peer=%s error=%s", event.peer, event.malformed)
        self._peers.opened(event, self.rib, self._policy_for)

    def _lookups(self, me: NodeInfo | None, now: float) -> tuple[Mapping[IPAddress, IPAddress],
                                                                 Mapping[PasswordRef, Md5Password],
                                                                 Mapping[IPAddress, IPAddress]]:
        """Source addresses towards configured peers (kernel), MD5 passwords (Secret or file) and the other
        family's next hops of multiprotocol peers (kernel), outside the agent lock: an API read may take
        seconds. Passwords are re-read every route sync period; a failed read keeps the last good value, so an
        API outage does not tear sessions down."""
        addresses, refs = required_lookups(self.config, me)
        sources = self._next_hops.sources(addresses) if self._next_hops is not None and addresses else {}
        wanted = other_family_lookups(self.config, me)
        others = self._next_hops.other_family_sources(wanted) if self._next_hops is not None and wanted else {}
        return sources, self._passwords.get(refs, now), others

    # --- the loop ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Adopt what the previous run left in the kernel as stale, then start the speaker and node source."""
        leftovers = dict(self._routes.dump())
        with self._lock:
            self._peers.adopt_leftovers(leftovers, self._clock())
        log.info("agent starting node=%s stale_routes=%d", self.node_name, len(leftovers))
        self._node_thread = threading.Thread(target=self._node_source.run, args=(self._stop,),
                                             name="node-source", daemon=True)
        self._node_thread.start()
        if self._service_source is not None:
            self._service_thread = threading.Thread(target=self._service_source.run, args=(self._stop,),
                                                    name="service-source", daemon=True)
            self._service_thread.start()
        if self._load_balancer is not None:
            self._lb_thread = threading.Thread(target=self._load_balancer.run, args=(self._stop,),
                                               name="lb-allocator", daemon=True)
            self._lb_thread.start()
        self._started = True

    def run(self) -> None:
        """Reconcile until stop() is called (blocking)."""
        if not self._started:
            self.start()
        while not self._stop.is_set():
            self._wake.wait(timeout=self._next_timeout())
            self._wake.clear()
            self._heartbeat = self._clock()
            if self._stop.is_set():
                break
            try:
                self.reconcile()
            except Exception:  # one bad round must not kill the agent: log, count, retry next round
                log.exception("reconcile failed")
                with self._lock:
                    self.counters.reconcile_failures += 1
                    self.counters.error("reconcile failed (see log)")
                time.sleep(0.5)
            self._heartbeat = self._clock()
        if self._lb_thread is not None:
            self._lb_thread.join(5.0)  # it releases its Lease on the way out: the next leader need not wait

    def _next_timeout(self) -> float:
        now = self._clock()
        timeout = max(0.05, min(self._routes.until_resync(now), self.config.route_sync_period))
        # A stale period or a graceful restart hold ends, a peer torn down for max-prefix may come back, a node
        # crosses notReadyGracePeriod.
        for deadline in (self._peers.next_deadline(),
                         next_change(self._not_ready, now, self.config.not_ready_grace_period, self.node_name)):
            if deadline is not None:
                timeout = min(timeout, max(0.05, deadline - now))
        if not self._network_reported and self._set_network_available is not None:
            timeout = min(timeout, 1.0)  # check again soon whether the node's network can be reported
        if self._speaker is None and self._me_known_at is not None:
            timeout = min(timeout, 0.5)  # waiting for Services to be listed, SERVICE_SYNC_WAIT at most
        return timeout

    def reconcile(self) -> None:
        now = self._clock()
        resync_due = self._routes.resync_due(now)
        if resync_due and self._next_hops is not None:
            self._next_hops.invalidate()  # re-learn the underlay: kernel routes may have changed meanwhile
        with self._lock:
            nodes = self._nodes
        sources, passwords, other_sources = self._lookups(nodes.get(self.node_name), now)
        with self._lock:
            self._apply_speaker_events()
            nodes = self._live_nodes(now)
            me = nodes.get(self.node_name)
            self._peers.sweep_expired_holds(self.rib, self._policy_for, now)
            intent = speaker_intent(self.config, me, nodes, sources=sources, passwords=passwords,
                                    disabled=self._peers.expire_disabled(now), other_sources=other_sources)
            if intent.problems != self._problems:
                for problem in set(intent.problems) - set(self._problems):
                    log.warning("configuration problem: %s", problem)
                    self._record_event(node_events.config_error(problem))
                self._problems = intent.problems
            if me is not None:
                self._peers.peers_known({p.address for p in intent.peers})
            if self._peers.bfd_sessions({p.address for p in intent.bfd}):
                self._wake.set()  # a peer held down by BFD lost its BFD session: the next round brings it back
            intent_changed = intent != self._intent
            if intent_changed:
                self._forget_removed_peers(intent)
                if intent.policies != self._intent.policies:
                    self._refilter(intent, me)
                self._intent = intent
            self._services.update(self.config, me, self._service_changes, self._local_changes)
            self._service_changes, self._local_changes = {}, {}
            announcements = intent.announcements | self._services.announcements()
            stale, stale_over = self._peers.stale_for_round(self.rib, now)
            # New peers or policies, stale routes kept or just swept: the whole desired map is computed again.
            round_ = self._routes.take(self.rib, resync=resync_due,
                                       force_rebuild=intent_changed or bool(stale) or stale_over)
        if me is not None and self._speaker is None and self._services_listed(now):
            self._speaker = self._make_speaker(router_id(me), self._on_speaker_event)
            self._speaker.start()
        if self._speaker is not None:
            self._speaker.set(intent.peers, announcements)
        self._set_bfd(intent.bfd)
        if me is not None and me.pod_cidrs and cniconf.write_conflist(self.cni_conf_dir, me.pod_cidrs,
                                                                      self.config.cni):
            log.info("wrote CNI conflist dir=%s pod_cidrs=%s", self.cni_conf_dir,
                     ",".join(map(str, me.pod_cidrs)))
        if me is not None and me.pod_cidrs and self._nat is not None:
            external = bool(node_peer_specs(self.config, me))
            if not self._nat.sync(nat_outgoing_enabled(self.config.nat_outgoing, external), me.pod_cidrs,
                                  self.config.cluster_cidrs, force=resync_due):
                with self._lock:
                    self.counters.error("natOutgoing rules not applied (see log); retried next round")
        result = self._routes.run(round_, stale, own_node_known=me is not None, now=now, wake=self._wake.set)
        self._count_route_errors(result)
        self.counters.reconciles += 1
        self._report_network(now)

    def _services_listed(self, now: float) -> bool:
        """With Service addresses configured, the speaker starts once Services and EndpointSlices are listed
        too (or SERVICE_SYNC_WAIT after our Node was): after a restart, peers that kept our routes under
        graceful restart drop whatever our first End-of-RIB does not cover, so the first announcements must
        include the Service addresses, not only the pod CIDRs."""
        if self._service_source is None or self._service_source.stats.synced:
            return True
        if self._me_known_at is None:
            self._me_known_at = now
        return now - self._me_known_at >= SERVICE_SYNC_WAIT

    def _set_bfd(self, peers: frozenset[BfdPeer]) -> None:
        """Hand the wanted BFD sessions to the BFD process, started the first time there are any."""
        if peers == self._bfd_wanted:
            return
        if self._bfd is None:
            if self._make_bfd is None:
                return
            self._bfd = self._make_bfd(self._on_bfd_change)
            self._bfd.start()
        self._bfd.set(peers)
        self._bfd_wanted = peers

    def _live_nodes(self, now: float) -> Mapping[str, NodeInfo]:
        """The Nodes to peer with: all of them, minus those NotReady too long (notReadyGracePeriod, off by
        default), which then lose their routes at once like a deleted Node."""
        gone = gone_nodes(self._not_ready, now, self.config.not_ready_grace_period, self.node_name)
        if not gone:
            return self._nodes
        return {name: node for name, node in self._nodes.items() if name not in gone}

    def _report_network(self, now: float) -> None:
        """Set the Node's NetworkUnavailable condition to False once routes are programmed and every peer has
        re-sent its table (or the grace period is over), so pods are scheduled only where the network works.
        Outside the lock: it is an API call; a failure (API away) is retried every 5 s."""
        if self._network_reported or self._set_network_available is None or now < self._network_retry_at:
            return
        with self._lock:
            ready = self._routes.programmed and self._peers.synced(now)
        if not ready:
            return
        try:
            self._set_network_available()
        except Exception as exc:
            self._network_retry_at = now + 5.0
            log.warning("cannot set NetworkUnavailable=False on node=%s error=%s", self.node_name, exc)
            return
        self._network_reported = True
        log.info("node condition NetworkUnavailable=False set node=%s", self.node_name)

    def _refilter(self, intent: SpeakerIntent, me: NodeInfo | None) -> None:
        """A peer's policy changed (its node's ASN or CIDRs, its import options): re-check what it sent."""
        default = import_policy(self.config, me, self._nodes)
        for rejected in self.rib.refilter(lambda peer: intent.policy_for(peer) or default):
            self.counters.rejected[(rejected.peer, rejected.reason)] += 1

    def _forget_removed_peers(self, intent: SpeakerIntent) -> None:
        """A peer that is no longer configured (its Node was deleted) loses its routes at once, without
        waiting for a hold timer to expire."""
        wanted = {p.address for p in intent.peers}
        for peer in self.rib.peers():
            if peer not in wanted:
                dropped = self.rib.drop_peer(peer)
                log.info("peer removed peer=%s routes_removed=%d", peer, dropped)
        gone = self._peer_addresses() - wanted
        self._peers.forget(gone)
        self._up -= gone

    def _count_route_errors(self, result: ApplyResult) -> None:
        errors = result.errors
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
        if self._bfd is not None:
            self._bfd.stop()
        self._routes.close()

    # --- read-only views for status and metrics ---------------------------------------------------------
    def sessions_up(self) -> frozenset[IPAddress]:
        with self._lock:
            return frozenset(self._up)

    def intent(self) -> SpeakerIntent:
        with self._lock:
            return self._intent

    def stall_after(self) -> float:
        """How long the reconcile loop may go without progress before /healthz calls it wedged: it wakes at
        least once per route sync period, so three missed periods (and never less than 10 s)."""
        return max(3 * self.config.route_sync_period, 10.0)

    def snapshot(self) -> AgentSnapshot:
        """A consistent copy of everything status, metrics and health endpoints report (thread-safe)."""
        now = self._clock()
        with self._lock:
            me = self._nodes.get(self.node_name)
            peers = tuple(sorted(self._intent.peers, key=lambda p: (p.address.version, p.address)))
            stale_pending = self._peers.stale_pending(now)
            view = AgentView(
                node=self.node_name, started_at=self._started_at,
                pod_cidrs=me.pod_cidrs if me is not None else None, peers=peers,
                announced=tuple(sorted(map(str, self._intent.announcements))), up=frozenset(self._up),
                accepted={p.address: self.rib.accepted(p.address) for p in peers},
                rejected=Counter(self.counters.rejected), session_changes=Counter(self.counters.session_changes),
                malformed=Counter(self.counters.malformed),
                routes=self._routes.status(len(self._peers.stale.routes) if stale_pending else 0),
                programmed=self._routes.programmed, startup_sync_pending=stale_pending,
                reconciles=self.counters.reconciles, reconcile_failures=self.counters.reconcile_failures,
                speaker_restarts=self.counters.speaker_restarts,
                bad_speaker_messages=self.counters.bad_speaker_messages,
                last_errors=tuple(self.counters.last_errors),
                loops=(
                    LoopStatus("reconcile", alive=not self._stop.is_set(),
                               age_s=max(0.0, now - self._heartbeat), stall_after_s=self.stall_after()),
                    LoopStatus("node-source", alive=self._node_thread is None or self._node_thread.is_alive()),
                ) + ((LoopStatus("service-source", alive=self._service_thread is None
                                 or self._service_thread.is_alive()),) if self._service_source else ()),
                peers_down_limit_s=self.config.liveness_peers_down_after,
                bfd=tuple(self._bfd_wanted), bfd_changes=Counter(self.counters.bfd_changes),
                bfd_held=self._peers.bfd_held(), services_enabled=self.config.services.enabled,
                service_addresses=self._services.addresses(), service_count=len(self._services),
                local_endpoints=self._services.local_endpoints(), services_ignored=self._services.ignored())
        return assemble(view, self._speaker, self._node_source, self.config.cni.data_dir, self._bfd,
                        self._service_source, self._load_balancer)
