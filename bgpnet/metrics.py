"""Prometheus metrics: a custom collector that turns an agent snapshot into metric families at scrape time.

The agent's numbers already live in the agent (counters, RIB, session table, node source stats); mirroring
them into prometheus_client Gauge/Counter objects would mean a second copy to keep in step, updated from
every code path. Instead each scrape takes one `AgentSnapshot` and `families()` (pure) derives everything
from it, so a scrape is consistent in itself and a metric can never disagree with `bgpnet status`.

Label values are bounded: `peer`/`peer_asn` by the configured peers (series of a removed peer disappear with
it), BFD's `state` by RFC 5880's four states, `reason` by the import policy's and the route table's fixed
labels, `family` by ipv4/ipv6, `type` by the watch event types (anything unexpected counts as "other"),
`pod_cidr` by this node's pod CIDRs.
Everything is registered on a registry of its own, never on prometheus_client's global one.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from bgpnet import health
from bgpnet.model import MALFORMED_ACTIONS
from bgpnet.policy import REASONS
from bgpnet.service_routes import IGNORE_REASONS as SERVICE_IGNORE_REASONS
from bgpnet.service_routes import KINDS as SERVICE_ADDRESS_KINDS
from bgpnet.snapshot import AgentSnapshot, HistogramSnapshot

SESSION_STATES = ("idle", "connected", "established", "down")
WATCH_EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")
PEER_LABELS = ["peer", "peer_asn"]


def _exabgp_version() -> str:
    try:
        from importlib.metadata import version

        return version("exabgp")
    except Exception:  # not installed (e.g. a unit test environment without it): still report the rest
        return "unknown"


def build_labels() -> dict[str, str]:
    from bgpnet import __version__

    return {"version": __version__, "python_version": platform.python_version(),
            "exabgp_version": _exabgp_version()}


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _histogram(family: HistogramMetricFamily, labels: list[str], h: HistogramSnapshot) -> None:
    buckets = [(repr(float(b)), float(c)) for b, c in zip(h.bounds, h.cumulative, strict=True)]
    buckets.append(("+Inf", float(h.count)))
    family.add_metric(labels, buckets, h.sum)


def peer_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("bgpnet_bgp_session_up", "1 when the BGP session with the peer is Established",
                           labels=PEER_LABELS)
    state = GaugeMetricFamily("bgpnet_bgp_session_state", "1 for the session's current state",
                              labels=[*PEER_LABELS, "state"])
    since = GaugeMetricFamily("bgpnet_bgp_session_state_since_timestamp_seconds",
                              "Unix time the session entered its current state", labels=PEER_LABELS)
    changes = CounterMetricFamily("bgpnet_bgp_session_state_changes_total",
                                  "Session transitions to Established or down (from Established)",
                                  labels=[*PEER_LABELS, "state"])
    updates = CounterMetricFamily("bgpnet_bgp_updates_received_total", "UPDATE messages received",
                                  labels=PEER_LABELS)
    received = CounterMetricFamily("bgpnet_bgp_prefixes_received_total",
                                   "Prefix announcements received, before import policy", labels=PEER_LABELS)
    withdrawn = CounterMetricFamily("bgpnet_bgp_withdrawals_received_total", "Prefix withdrawals received",
                                    labels=PEER_LABELS)
    accepted = GaugeMetricFamily("bgpnet_bgp_prefixes_accepted",
                                 "Prefixes from the peer that passed import policy and are in the RIB now",
                                 labels=PEER_LABELS)
    advertised = GaugeMetricFamily("bgpnet_bgp_prefixes_advertised", "Prefixes announced to the peer now",
                                   labels=PEER_LABELS)
    rejected = CounterMetricFamily("bgpnet_bgp_prefixes_rejected_total",
                                   "Received prefixes refused by import policy, by reason",
                                   labels=[*PEER_LABELS, "reason"])
    malformed = CounterMetricFamily("bgpnet_bgp_malformed_updates_total",
                                    "Malformed UPDATEs received, by the RFC 7606 action taken",
                                    labels=[*PEER_LABELS, "action"])
    for peer in snapshot.peers:
        labels = [peer.address, str(peer.asn)]
        for action in MALFORMED_ACTIONS:
            malformed.add_metric([*labels, action], peer.malformed.get(action, 0))
        up.add_metric(labels, 1.0 if peer.established else 0.0)
        for name in SESSION_STATES:
            state.add_metric([*labels, name], 1.0 if peer.state == name else 0.0)
        if peer.since:
            since.add_metric(labels, peer.since)
        for name in ("established", "down"):
            changes.add_metric([*labels, name], peer.state_changes.get(name, 0))
        updates.add_metric(labels, peer.updates_received)
        received.add_metric(labels, peer.prefixes_received)
        withdrawn.add_metric(labels, peer.withdrawals_received)
        accepted.add_metric(labels, peer.prefixes_accepted)
        advertised.add_metric(labels, peer.prefixes_advertised)
        # Every known reason from the start, so rate() sees the first rejection as an increase.
        for reason in sorted(set(REASONS) | set(peer.rejected)):
            rejected.add_metric([*labels, reason], peer.rejected.get(reason, 0))
    yield from (up, state, since, changes, updates, received, withdrawn, accepted, advertised, rejected, malformed)
    yield _gauge("bgpnet_bgp_announced_prefixes", "Pod CIDRs this node announces", len(snapshot.announced))


def route_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    routes = snapshot.routes
    installed = GaugeMetricFamily("bgpnet_kernel_routes", "Routes bgpnet holds in the kernel, by address family",
                                  labels=["family"])
    for family in ("ipv4", "ipv6"):
        installed.add_metric([family], routes.installed.get(family, 0))
    yield installed
    yield _gauge("bgpnet_kernel_routes_stale", "Routes kept from before a restart until peers re-send them",
                 routes.stale)
    duration = HistogramMetricFamily("bgpnet_route_sync_duration_seconds",
                                     "Time to program the kernel routes (apply: the diff; resync: full re-dump "
                                     "and re-apply)", labels=["kind"])
    for kind in ("apply", "resync"):
        if kind in routes.durations:
            _histogram(duration, [kind], routes.durations[kind])
    yield duration
    errors = CounterMetricFamily("bgpnet_route_sync_errors_total",
                                 "Routes the kernel refused (conflict: another owner holds the prefix; else the "
                                 "errno name)", labels=["reason"])
    for reason in sorted(set(routes.errors) | {"conflict"}):
        errors.add_metric([reason], routes.errors.get(reason, 0))
    yield errors
    changes = CounterMetricFamily("bgpnet_route_changes_total", "Kernel route changes made", labels=["op"])
    for op in ("add", "replace", "delete"):
        changes.add_metric([op], routes.changes.get(op, 0))
    yield changes
    if routes.last_sync_time is not None:
        yield _gauge("bgpnet_route_sync_last_timestamp_seconds", "Unix time the last route sync finished",
                     routes.last_sync_time)
    yield _counter("bgpnet_reconciles_total", "Reconcile rounds run", snapshot.reconciles)
    yield _counter("bgpnet_reconcile_failures_total", "Reconcile rounds that failed with an exception",
                   snapshot.reconcile_failures)


def kube_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    kube = snapshot.kube
    events = CounterMetricFamily("bgpnet_kube_node_watch_events_total", "Node watch events received, by type",
                                 labels=["type"])
    other = sum(n for t, n in kube.events.items() if t not in WATCH_EVENT_TYPES)
    for kind in WATCH_EVENT_TYPES:
        events.add_metric([kind], kube.events.get(kind, 0))
    events.add_metric(["other"], other)
    yield events
    yield _counter("bgpnet_kube_node_relists_total", "Full Node re-lists (start, 410 Gone, periodic resync)",
                   kube.relists)
    yield _counter("bgpnet_kube_node_watches_total", "Node watch requests started", kube.watches)
    yield _counter("bgpnet_kube_api_errors_total", "Failed Kubernetes API requests", kube.api_errors)
    yield _gauge("bgpnet_kube_api_reachable", "1 when the last Kubernetes API request succeeded",
                 1.0 if kube.reachable else 0.0)
    yield _gauge("bgpnet_kube_nodes", "Nodes known", kube.nodes)
    yield _gauge("bgpnet_kube_bad_nodes", "Nodes whose last update could not be used", kube.bad_nodes)
    if kube.last_sync_time is not None:
        yield _gauge("bgpnet_kube_last_sync_timestamp_seconds",
                     "Unix time of the last successful list or watch event", kube.last_sync_time)


def speaker_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    speaker = snapshot.speaker
    yield _gauge("bgpnet_speaker_up", "1 when the ExaBGP process is running", 1.0 if speaker.running else 0.0)
    yield _counter("bgpnet_speaker_restarts_total", "ExaBGP restarts after its process exited", speaker.restarts)
    yield _counter("bgpnet_speaker_bad_messages_total", "Lines from ExaBGP that could not be parsed",
                   speaker.bad_messages)
    yield _counter("bgpnet_speaker_command_errors_total", "Commands ExaBGP answered with an error",
                   speaker.command_errors)
    yield _counter("bgpnet_speaker_channel_restarts_total",
                   "ExaBGP restarts because its API helper did not hand over its pipes", speaker.channel_restarts)


BFD_STATES = ("AdminDown", "Down", "Init", "Up")


def bfd_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily("bgpnet_bfd_session_up", "1 when the BFD session with the peer is Up",
                           labels=["peer"])
    changes = CounterMetricFamily("bgpnet_bfd_session_state_changes_total",
                                  "BFD session transitions, by the state entered", labels=["peer", "state"])
    detection = GaugeMetricFamily(
        "bgpnet_bfd_detection_time_seconds",
        "BFD detection time: configured (multiplier x minRx) and negotiated with the peer (0 until it is heard)",
        labels=["peer", "kind"])
    held = GaugeMetricFamily("bgpnet_bfd_bgp_held_down",
                             "1 while BFD has declared the peer dead and its BGP session is kept down",
                             labels=["peer"])
    for session in snapshot.bfd:
        up.add_metric([session.peer], 1.0 if session.up else 0.0)
        for state in BFD_STATES:
            changes.add_metric([session.peer, state], session.state_changes.get(state, 0))
        detection.add_metric([session.peer, "configured"], session.configured_detect_ms / 1000)
        detection.add_metric([session.peer, "negotiated"], session.negotiated_detect_ms / 1000)
        held.add_metric([session.peer], 1.0 if session.holding_bgp_down else 0.0)
    yield from (up, changes, detection, held)
    process = snapshot.bfd_process
    yield _gauge("bgpnet_bfd_process_up", "1 when the BFD process is running (0 also when no peer has BFD)",
                 1.0 if process.running else 0.0)
    yield _counter("bgpnet_bfd_process_restarts_total", "BFD process restarts after it exited", process.restarts)


def service_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    services = snapshot.services
    advertised = GaugeMetricFamily("bgpnet_service_addresses_advertised",
                                   "Service addresses this node announces, by IP family and kind",
                                   labels=["family", "kind"])
    counts = Counter((("ipv6" if ":" in a.prefix else "ipv4"), a.kind) for a in services.addresses)
    for family in ("ipv4", "ipv6"):
        for kind in SERVICE_ADDRESS_KINDS:
            advertised.add_metric([family, kind], counts[(family, kind)])
    yield advertised
    ignored = GaugeMetricFamily("bgpnet_service_addresses_ignored",
                                "Addresses of current Services not announced because the config does not allow "
                                "them, by reason", labels=["reason"])
    for reason in SERVICE_IGNORE_REASONS:
        ignored.add_metric([reason], services.ignored.get(reason, 0))
    yield ignored
    yield _gauge("bgpnet_services", "Services known (0 when no Service address is announced)", services.services)
    yield _gauge("bgpnet_services_with_local_endpoints", "Services with a ready endpoint on this node",
                 services.local_endpoints)
    yield _gauge("bgpnet_kube_services_synced", "1 when Services and EndpointSlices have been listed",
                 1.0 if services.synced else 0.0)
    yield _counter("bgpnet_kube_service_relists_total", "Full re-lists of Services and EndpointSlices",
                   services.relists)
    yield _counter("bgpnet_kube_service_api_errors_total",
                   "Failed Kubernetes API requests of the Service source", services.api_errors)


def load_balancer_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    """The LoadBalancer allocator's figures; pools are reported by the agent that leads (the one writer)."""
    lb = snapshot.load_balancer
    if not lb.enabled:
        return
    yield _gauge("bgpnet_lb_allocator_leader", "1 when this agent holds the allocator's Lease",
                 1.0 if lb.leader else 0.0)
    in_use = GaugeMetricFamily("bgpnet_lb_pool_addresses_in_use", "LoadBalancer addresses assigned, per pool",
                               labels=["pool", "family"])
    capacity = GaugeMetricFamily("bgpnet_lb_pool_addresses_capacity", "LoadBalancer addresses a pool holds",
                                 labels=["pool", "family"])
    for pool in lb.pools:
        in_use.add_metric([pool.name, pool.family], pool.in_use)
        capacity.add_metric([pool.name, pool.family], pool.capacity)
    yield in_use
    yield capacity
    yield _gauge("bgpnet_lb_services_pending", "Served LoadBalancer Services missing an address", lb.pending)
    yield _counter("bgpnet_lb_allocation_failures_total",
                   "Services that became pending, or pending for a new reason", lb.allocation_failures)
    yield _counter("bgpnet_lb_status_writes_total", "status.loadBalancer.ingress writes", lb.status_writes)


def ipam_families(snapshot: AgentSnapshot) -> Iterator[Metric]:
    in_use = GaugeMetricFamily("bgpnet_ipam_addresses_in_use", "Pod addresses reserved by bgpnet-cni",
                               labels=["pod_cidr"])
    capacity = GaugeMetricFamily("bgpnet_ipam_addresses_capacity", "Pod addresses bgpnet-cni can hand out",
                                 labels=["pod_cidr"])
    for pool in snapshot.ipam:
        in_use.add_metric([pool.pod_cidr], pool.in_use)
        capacity.add_metric([pool.pod_cidr], pool.capacity)
    yield from (in_use, capacity)


def agent_families(snapshot: AgentSnapshot, build: dict[str, str]) -> Iterator[Metric]:
    info = InfoMetricFamily("bgpnet_build", "bgpnet build information", labels=sorted(build))
    info.add_metric([build[k] for k in sorted(build)], {})
    yield info
    yield _gauge("bgpnet_agent_start_time_seconds", "Unix time the agent started", snapshot.started_at)
    yield _gauge("bgpnet_ready", "1 when /readyz reports ready", 1.0 if health.readiness(snapshot).ok else 0.0)
    yield _gauge("bgpnet_healthy", "1 when /healthz reports healthy", 1.0 if health.liveness(snapshot).ok else 0.0)
    age = GaugeMetricFamily("bgpnet_loop_progress_age_seconds", "Time since a loop last proved progress",
                            labels=["loop"])
    for loop in snapshot.loops:
        if loop.age_s is not None:
            age.add_metric([loop.name], loop.age_s)
    yield age


def families(snapshot: AgentSnapshot, build: dict[str, str] | None = None) -> list[Metric]:
    """Every bgpnet metric family for one snapshot (pure)."""
    parts: Iterable[Iterator[Metric]] = (
        agent_families(snapshot, build or {"version": snapshot.version}), peer_families(snapshot),
        route_families(snapshot), kube_families(snapshot), speaker_families(snapshot), bfd_families(snapshot),
        service_families(snapshot), load_balancer_families(snapshot),
        ipam_families(snapshot))
    return [family for part in parts for family in part]


class AgentCollector(Collector):
    """Reads a fresh snapshot on every scrape."""

    def __init__(self, snapshot: Callable[[], AgentSnapshot]) -> None:
        self._snapshot = snapshot
        self._build = build_labels()

    def collect(self) -> Iterable[Metric]:
        return families(self._snapshot(), self._build)


def make_registry(snapshot: Callable[[], AgentSnapshot], *, process: bool = True) -> CollectorRegistry:
    """A registry of its own with bgpnet's collector (plus process_* and python_info, as any exporter has)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(snapshot))
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry
