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
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Protocol, runtime_checkable

from bgpnet import __version__, cniconf, ipam_usage
from bgpnet.config import TEARDOWN, WARN, AgentConfig, PasswordRef
from bgpnet.model import BgpPeer, IPAddress, IPNetwork, KernelRoute, Md5Password, NodeInfo
from bgpnet.policy import MAX_PREFIX, ImportPolicy
from bgpnet.rib import Rib
from bgpnet.snapshot import (
    AgentSnapshot,
    DurationHistogram,
    KubeStatus,
    LoopStatus,
    PeerStatus,
    RouteSyncStatus,
    SpeakerStatus,
)
from bgpnet.speaker.events import (
    BadMessage,
    EndOfRib,
    PeerDown,
    PeerUp,
    RoutesReceived,
    SpeakerEvent,
    SpeakerRestarted,
)
from bgpnet.speaker.sessions import ESTABLISHED, IDLE, SessionState
from bgpnet.state import SpeakerIntent, import_policy, required_lookups, router_id, speaker_intent

log = logging.getLogger("bgpnet.agent")


class NodeSourcePort(Protocol):
    def run(self, stop: threading.Event) -> None: ...


class SpeakerPort(Protocol):
    def start(self) -> None: ...
    def set(self, peers: Collection[BgpPeer], announcements: Collection[IPNetwork]) -> None: ...
    def stop(self) -> None: ...


class NextHopPort(Protocol):
    """Kernel lookups (bgpnet.routes.resolve.NextHopResolver): source addresses towards peers and gateways
    for learned next hops that are not directly connected."""

    def sources(self, peers: Collection[IPAddress]) -> Mapping[IPAddress, IPAddress]: ...
    def resolve(self, routes: Mapping[IPNetwork, KernelRoute]) -> tuple[dict[IPNetwork, KernelRoute],
                                                                         list[IPNetwork]]: ...
    def invalidate(self) -> None: ...


class RouteTablePort(Protocol):
    def apply(self, desired: Collection[KernelRoute]) -> object: ...
    def resync(self, desired: Collection[KernelRoute]) -> object: ...
    def dump(self) -> Mapping[IPNetwork, KernelRoute]: ...
    def close(self) -> None: ...


# What the adapters can report for status and metrics. Optional: an adapter without them (a test fake) still
# drives the agent; its part of the snapshot is then derived from what the agent itself saw.
@runtime_checkable
class ObservableSpeaker(Protocol):
    restarts: int
    bad_messages: int
    command_errors: int

    @property
    def pid(self) -> int | None: ...
    def sessions(self) -> Mapping[IPAddress, SessionState]: ...


class NodeStatsView(Protocol):
    events: Mapping[str, int]
    relists: int
    watches: int
    api_errors: int
    bad_nodes: Mapping[str, str]
    api_reachable: bool
    last_sync_time: float | None
    nodes: int


@runtime_checkable
class ObservableNodeSource(Protocol):
    @property
    def stats(self) -> NodeStatsView: ...


@runtime_checkable
class ObservableRouteTable(Protocol):
    def installed(self) -> Mapping[IPNetwork, KernelRoute]: ...


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
    reconcile_failures: int = 0
    last_errors: list[str] = field(default_factory=list)
    # Totals that survive a RIB reset (an ExaBGP restart starts a fresh RIB): (peer, reason) and
    # (peer, "established"/"down").
    rejected: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)
    session_changes: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)

    def error(self, message: str) -> None:
        self.last_errors = [*self.last_errors[-9:], message]


@dataclass
class RouteSyncRecord:
    """What the reconcile loop observed of its route applies (read by `snapshot()` under the agent lock)."""

    durations: dict[str, DurationHistogram] = field(
        default_factory=lambda: {"apply": DurationHistogram(), "resync": DurationHistogram()})
    errors: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    installed: dict[str, int] = field(default_factory=lambda: {"ipv4": 0, "ipv6": 0})
    last_time: float | None = None
    last_errors: int = 0
    last_duration_s: float = 0.0
    programmed: bool = False


class Agent:
    def __init__(self, config: AgentConfig, node_name: str, *, cni_conf_dir: Path,
                 make_node_source: Callable[[Callable[[Mapping[str, NodeInfo]], None]], NodeSourcePort],
                 make_speaker: Callable[[IPv4Address, Callable[[SpeakerEvent], None]], SpeakerPort],
                 route_table: RouteTablePort, clock: Callable[[], float] = time.monotonic,
                 read_password: Callable[[PasswordRef], Md5Password] | None = None,
                 next_hops: NextHopPort | None = None) -> None:
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
        # Observability: the wall-clock start, the loop's last proof of progress, what route applies did.
        self._started_at = time.time()
        self._heartbeat = clock()
        self._sync = RouteSyncRecord()
        self._node_thread: threading.Thread | None = None
        # ToR peering: MD5 passwords (last good value per reference), kernel lookups, peers torn down for
        # max-prefix (address -> when they may come back), what was last logged (log once per change).
        self._read_password = read_password
        self._passwords: dict[PasswordRef, Md5Password] = {}
        self._password_errors: dict[PasswordRef, str] = {}
        self._passwords_read_at: float | None = None
        self._next_hops = next_hops
        self._disabled: dict[IPAddress, float] = {}
        self._limit_warned: set[IPAddress] = set()
        self._problems: tuple[str, ...] = ()
        self._unresolved: int = 0

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
            if event.peer in self._disabled:
                # Torn down for max-prefix; UPDATEs still in flight are refused as a whole.
                for rejected in self.rib.reject_all(event.peer, event.announced, MAX_PREFIX):
                    self.counters.rejected[(rejected.peer, rejected.reason)] += 1
                return
            policy = self._intent.policy_for(event.peer) or import_policy(self.config,
                                                                          self._nodes.get(self.node_name))
            for rejected in self.rib.update(event.peer, event.announced, event.withdrawn, policy):
                self.counters.rejected[(rejected.peer, rejected.reason)] += 1
                if rejected.reason != MAX_PREFIX:
                    log.info("route rejected peer=%s prefix=%s reason=%s", rejected.peer, rejected.prefix,
                             rejected.reason)
            self._check_prefix_limit(event.peer, policy)
        elif isinstance(event, PeerUp):
            self._up.add(event.peer)
            if self._next_hops is not None:
                self._next_hops.invalidate()  # a new path may change how next hops resolve
            self.counters.session_changes[(event.peer, "established")] += 1
            log.info("session up peer=%s", event.peer)
        elif isinstance(event, PeerDown):
            self._up.discard(event.peer)
            self.counters.session_changes[(event.peer, "down")] += 1
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

    def _check_prefix_limit(self, peer: IPAddress, policy: ImportPolicy) -> None:
        action = self.rib.over_limit.get(peer)
        if action is None:
            self._limit_warned.discard(peer)
        elif action == TEARDOWN:
            self.rib.over_limit.pop(peer, None)
            self._disabled[peer] = self._clock() + policy.restart_after
            self._stale.forget_gateway(peer)
            log.warning("max-prefix exceeded peer=%s limit=%d action=teardown restart_after=%.0fs", peer,
                        policy.max_prefixes, policy.restart_after)
        elif action == WARN and peer not in self._limit_warned:
            self._limit_warned.add(peer)
            log.warning("max-prefix exceeded peer=%s limit=%d accepted=%d action=warn", peer,
                        policy.max_prefixes, self.rib.accepted(peer))

    def _lookups(self, me: NodeInfo | None, now: float) -> tuple[Mapping[IPAddress, IPAddress],
                                                                 Mapping[PasswordRef, Md5Password]]:
        """Source addresses towards configured peers (kernel) and MD5 passwords (Secret or file), outside
        the agent lock: an API read may take seconds. Passwords are re-read every route sync period; a
        failed read keeps the last good value, so an API outage does not tear sessions down."""
        addresses, refs = required_lookups(self.config, me)
        sources = self._next_hops.sources(addresses) if self._next_hops is not None and addresses else {}
        due = (self._passwords_read_at is None or now - self._passwords_read_at >= self.config.route_sync_period
               or not refs <= self._passwords.keys())
        if refs and due and self._read_password is not None:
            self._passwords_read_at = now
            for ref in refs:
                try:
                    self._passwords[ref] = self._read_password(ref)
                    self._password_errors.pop(ref, None)
                except Exception as exc:  # the message names the reference, never the value
                    if self._password_errors.get(ref) != str(exc):
                        self._password_errors[ref] = str(exc)
                        log.warning("cannot read MD5 password error=%s", exc)
        return sources, {ref: self._passwords[ref] for ref in refs if ref in self._passwords}

    def _expire_disabled(self, now: float) -> frozenset[IPAddress]:
        for peer, until in list(self._disabled.items()):
            if now >= until:
                del self._disabled[peer]
                log.info("re-enabling peer after max-prefix teardown peer=%s", peer)
        return frozenset(self._disabled)

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
        self._node_thread = threading.Thread(target=self._node_source.run, args=(self._stop,),
                                             name="node-source", daemon=True)
        self._node_thread.start()
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

    def _next_timeout(self) -> float:
        until_resync = self._last_resync + self.config.route_sync_period - self._clock()
        timeout = max(0.05, min(until_resync, self.config.route_sync_period))
        if self._stale.routes:
            timeout = min(timeout, max(0.05, self._stale.deadline - self._clock()))
        if self._disabled:  # wake to re-establish a session torn down for max-prefix
            timeout = min(timeout, max(0.05, min(self._disabled.values()) - self._clock()))
        return timeout

    def reconcile(self) -> None:
        now = self._clock()
        resync_due = now - self._last_resync >= self.config.route_sync_period
        if resync_due and self._next_hops is not None:
            self._next_hops.invalidate()  # re-learn the underlay: kernel routes may have changed meanwhile
        with self._lock:
            nodes = self._nodes
        sources, passwords = self._lookups(nodes.get(self.node_name), now)
        with self._lock:
            nodes = self._nodes
            me = nodes.get(self.node_name)
            intent = speaker_intent(self.config, me, nodes, sources=sources, passwords=passwords,
                                    disabled=self._expire_disabled(now))
            if intent.problems != self._problems:
                for problem in set(intent.problems) - set(self._problems):
                    log.warning("configuration problem: %s", problem)
                self._problems = intent.problems
            if me is not None and not self._stale.peers_known:
                self._stale.peers_known = True
                self._stale.awaiting_eor = {p.address for p in intent.peers}
            if intent != self._intent:
                self._forget_removed_peers(intent)
                if intent.policies != self._intent.policies:
                    self._refilter(intent, me)
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
        if self._next_hops is not None:
            desired = self._resolve_next_hops(desired)
        if resync_due:
            result = self._routes.resync(desired.values())
            self._last_resync = now
            kind = "resync"
        else:
            result = self._routes.apply(desired.values())
            kind = "apply"
        self._count_route_errors(result)
        self._record_sync(kind, result, desired, own_node_known=me is not None)
        self.counters.reconciles += 1

    def _refilter(self, intent: SpeakerIntent, me: NodeInfo | None) -> None:
        """A peer's policy changed (its node's ASN or CIDRs, its import options): re-check what it sent."""
        default = import_policy(self.config, me)
        for rejected in self.rib.refilter(lambda peer: intent.policy_for(peer) or default):
            self.counters.rejected[(rejected.peer, rejected.reason)] += 1

    def _resolve_next_hops(self, desired: dict[IPNetwork, KernelRoute]) -> dict[IPNetwork, KernelRoute]:
        """Install learned routes via gateways the kernel can reach (see bgpnet.routes.resolve)."""
        assert self._next_hops is not None
        resolved, unresolved = self._next_hops.resolve(desired)
        if len(unresolved) != self._unresolved:
            self._unresolved = len(unresolved)
            if unresolved:
                log.warning("routes with unreachable next hops left out count=%d first=%s", len(unresolved),
                            unresolved[0])
        return resolved

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

    def _record_sync(self, kind: str, result: object, desired: Mapping[IPNetwork, KernelRoute], *,
                     own_node_known: bool) -> None:
        errors = tuple(getattr(result, "errors", ()) or ())
        changes = {op: int(getattr(result, attr, 0) or 0)
                   for op, attr in (("add", "added"), ("replace", "replaced"), ("delete", "removed"))}
        record = self._sync
        # What the kernel holds is the route table's cache after an apply (a fake without one installs
        # exactly what it was given). Counting families is O(routes), so only when something changed.
        view = self._routes.installed() if isinstance(self._routes, ObservableRouteTable) else desired
        count_again = (kind == "resync" or errors or any(changes.values())
                       or len(view) != sum(record.installed.values()))
        if count_again:
            v6 = sum(1 for prefix in view if prefix.version == 6)
            installed = {"ipv4": len(view) - v6, "ipv6": v6}
        with self._lock:
            record.durations[kind].observe(float(getattr(result, "duration_s", 0.0) or 0.0))
            record.errors.update(getattr(e, "reason", "unknown") for e in errors)
            record.changes.update(changes)
            if count_again:
                record.installed = installed
            record.last_time = time.time()
            record.last_errors = len(errors)
            record.last_duration_s = float(getattr(result, "duration_s", 0.0) or 0.0)
            record.programmed = own_node_known and not errors

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


    def stall_after(self) -> float:
        """How long the reconcile loop may go without progress before /healthz calls it wedged: it wakes at
        least once per route sync period, so three missed periods (and never less than 10 s)."""
        return max(3 * self.config.route_sync_period, 10.0)

    def snapshot(self) -> AgentSnapshot:
        """A consistent copy of everything status, metrics and health endpoints report (thread-safe)."""
        now = self._clock()
        with self._lock:
            me = self._nodes.get(self.node_name)
            peers = sorted(self._intent.peers, key=lambda p: (p.address.version, p.address))
            announced = tuple(sorted(map(str, self._intent.announcements)))
            up = set(self._up)
            accepted = {p.address: self.rib.accepted(p.address) for p in peers}
            rejected = Counter(self.counters.rejected)
            changes = Counter(self.counters.session_changes)
            stale_pending = self._stale.active(now)
            record = self._sync
            routes = RouteSyncStatus(
                installed=dict(record.installed),
                stale=len(self._stale.routes) if stale_pending else 0,
                durations={kind: h.snapshot() for kind, h in record.durations.items()},
                errors=dict(record.errors), changes=dict(record.changes),
                last_sync_time=record.last_time, last_sync_errors=record.last_errors,
                last_duration_s=record.last_duration_s)
            programmed = record.programmed
            counters = (self.counters.reconciles, self.counters.reconcile_failures,
                        self.counters.speaker_restarts, self.counters.bad_speaker_messages,
                        tuple(self.counters.last_errors))
        reconciles, failures, restarts, bad_messages, last_errors = counters
        speaker = self._speaker
        sessions: Mapping[IPAddress, SessionState] = {}
        speaker_status = SpeakerStatus(restarts=restarts, bad_messages=bad_messages)
        if isinstance(speaker, ObservableSpeaker):
            sessions = speaker.sessions()
            pid = speaker.pid
            speaker_status = SpeakerStatus(running=pid is not None, pid=pid, restarts=restarts,
                                           bad_messages=bad_messages, command_errors=speaker.command_errors)
        peer_statuses = []
        for peer in peers:
            ip = peer.address
            session = sessions.get(ip) or SessionState(state=ESTABLISHED if ip in up else IDLE)
            peer_statuses.append(PeerStatus(
                address=str(ip), asn=peer.asn, description=peer.description, state=session.state,
                since=session.since,
                state_changes={state: changes[(ip, state)] for state in ("established", "down")},
                updates_received=session.updates_received, prefixes_received=session.prefixes_received,
                withdrawals_received=session.withdrawals_received, prefixes_accepted=accepted[ip],
                prefixes_advertised=len(announced) if session.state == ESTABLISHED else 0,
                rejected={reason: n for (p, reason), n in sorted(rejected.items()) if p == ip},
                last_down_reason=session.last_down_reason))
        ipam = ()
        if me is not None:
            store = Path(self.config.cni.data_dir) / cniconf.NETWORK_NAME
            ipam = ipam_usage.read_pools(store, me.pod_cidrs)
        loops = (
            LoopStatus("reconcile", alive=not self._stop.is_set(), age_s=max(0.0, now - self._heartbeat),
                       stall_after_s=self.stall_after()),
            LoopStatus("node-source", alive=self._node_thread is None or self._node_thread.is_alive()),
        )
        return AgentSnapshot(
            node=self.node_name, version=__version__, taken_at=time.time(), started_at=self._started_at,
            own_node_known=me is not None, routes_programmed=programmed, startup_sync_pending=stale_pending,
            announced=announced, peers=tuple(peer_statuses), routes=routes, kube=self._kube_status(),
            speaker=speaker_status, ipam=ipam, loops=loops, reconciles=reconciles, reconcile_failures=failures,
            last_errors=last_errors)

    def _kube_status(self) -> KubeStatus:
        if not isinstance(self._node_source, ObservableNodeSource):
            return KubeStatus()
        stats = self._node_source.stats
        return KubeStatus(reachable=stats.api_reachable, nodes=stats.nodes, bad_nodes=len(stats.bad_nodes),
                          events=dict(stats.events), relists=stats.relists, watches=stats.watches,
                          api_errors=stats.api_errors, last_sync_time=stats.last_sync_time)
