"""Assemble the agent's `AgentSnapshot` (status, metrics, health) from what the agent and its adapters know.

The agent copies its own state under its lock into `AgentView`; this module adds what the adapters report
about themselves (ExaBGP's sessions, the node source's API statistics, IPAM usage on disk) outside that lock,
so a slow status request never delays the reconcile loop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bgpnet import __version__, cniconf, ipam_usage
from bgpnet.agent_ports import BfdPort, LoadBalancerPort, NodeSourcePort, ServiceSourcePort, SpeakerPort
from bgpnet.model import BfdPeer, BgpPeer, IPAddress, IPNetwork
from bgpnet.service_routes import ServiceAddress
from bgpnet.snapshot import (
    AgentSnapshot,
    AllocatorStatus,
    BfdProcessStatus,
    BfdStatus,
    KubeStatus,
    LoadBalancerPoolStatus,
    LoopStatus,
    PeerStatus,
    RouteSyncStatus,
    ServiceAddressStatus,
    ServicesStatus,
    SpeakerStatus,
)
from bgpnet.speaker.sessions import ESTABLISHED, IDLE, SessionState


@dataclass(frozen=True)
class AgentView:
    """A consistent copy of the agent's own state, taken under its lock."""

    node: str
    started_at: float
    pod_cidrs: tuple[IPNetwork, ...] | None  # None: our own Node is not known yet
    peers: tuple[BgpPeer, ...]
    announced: tuple[str, ...]
    up: frozenset[IPAddress]
    accepted: Mapping[IPAddress, int]
    rejected: Counter[tuple[IPAddress, str]]
    session_changes: Counter[tuple[IPAddress, str]]
    malformed: Counter[tuple[IPAddress, str]]
    routes: RouteSyncStatus
    programmed: bool
    startup_sync_pending: bool
    reconciles: int
    reconcile_failures: int
    speaker_restarts: int
    bad_speaker_messages: int
    last_errors: tuple[str, ...]
    loops: tuple[LoopStatus, ...]
    peers_down_limit_s: float = 0.0
    bfd: tuple[BfdPeer, ...] = ()  # the BFD sessions wanted
    bfd_changes: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)
    bfd_held: frozenset[IPAddress] = frozenset()  # peers declared dead by BFD, kept out of the speaker
    services_enabled: bool = False
    service_addresses: tuple[ServiceAddress, ...] = ()
    service_count: int = 0
    local_endpoints: int = 0
    services_ignored: Counter[str] = field(default_factory=Counter)


def assemble(view: AgentView, speaker: SpeakerPort | None, node_source: NodeSourcePort,
             ipam_data_dir: str, bfd: BfdPort | None = None,
             service_source: ServiceSourcePort | None = None,
             load_balancer: LoadBalancerPort | None = None) -> AgentSnapshot:
    """The snapshot from the agent's own view and its adapters' reports (no speaker yet: our own Node is not
    known, ExaBGP is not started; sessions are then what the agent itself saw)."""
    sessions: Mapping[IPAddress, SessionState] = {}
    loops = view.loops
    speaker_status = SpeakerStatus(restarts=view.speaker_restarts, bad_messages=view.bad_speaker_messages)
    if speaker is not None:
        sessions = speaker.sessions()
        pid = speaker.pid
        speaker_status = SpeakerStatus(running=pid is not None, pid=pid, restarts=view.speaker_restarts,
                                       bad_messages=view.bad_speaker_messages,
                                       command_errors=speaker.command_errors,
                                       channel_restarts=speaker.channel_restarts)
        loops = view.loops + speaker.loops()
    peer_statuses = []
    service_prefixes = len({a.prefix for a in view.service_addresses})
    for peer in view.peers:
        ip = peer.address
        session = sessions.get(ip) or SessionState(state=ESTABLISHED if ip in view.up else IDLE)
        peer_statuses.append(PeerStatus(
            address=str(ip), asn=peer.asn, description=peer.description, state=session.state,
            since=session.since,
            state_changes={state: view.session_changes[(ip, state)] for state in ("established", "down")},
            updates_received=session.updates_received, prefixes_received=session.prefixes_received,
            withdrawals_received=session.withdrawals_received, prefixes_accepted=view.accepted[ip],
            # Service addresses go to configured peers only (bgpnet.service_routes).
            prefixes_advertised=(len(view.announced) + (0 if peer.mesh else service_prefixes)
                                 if session.state == ESTABLISHED else 0),
            # Filtered by peer before sorting: peers of both families do not order against each other.
            rejected={reason: n for (p, reason), n in sorted_by_reason(view.rejected, ip)},
            malformed={action: n for (p, action), n in sorted_by_reason(view.malformed, ip)},
            last_down_reason=session.last_down_reason, down_since=session.down_since or view.started_at))
    ipam = ()
    if view.pod_cidrs is not None:
        store = Path(ipam_data_dir) / cniconf.NETWORK_NAME
        ipam = ipam_usage.read_pools(store, view.pod_cidrs)
    return AgentSnapshot(
        node=view.node, version=__version__, taken_at=time.time(), started_at=view.started_at,
        own_node_known=view.pod_cidrs is not None, routes_programmed=view.programmed,
        startup_sync_pending=view.startup_sync_pending, announced=view.announced, peers=tuple(peer_statuses),
        routes=view.routes, kube=kube_status(node_source), speaker=speaker_status, ipam=ipam, loops=loops,
        reconciles=view.reconciles, reconcile_failures=view.reconcile_failures, last_errors=view.last_errors,
        peers_down_limit_s=view.peers_down_limit_s, bfd=bfd_statuses(view, bfd),
        bfd_process=BfdProcessStatus() if bfd is None else BfdProcessStatus(
            running=bfd.pid is not None, pid=bfd.pid, restarts=bfd.restarts),
        services=services_status(view, service_source), load_balancer=allocator_status(load_balancer))


def allocator_status(allocator: LoadBalancerPort | None) -> AllocatorStatus:
    if allocator is None:
        return AllocatorStatus()
    stats = allocator.stats()
    pools = tuple(LoadBalancerPoolStatus(name, f"ipv{version}", usage.in_use.get(version, 0), capacity)
                  for name, usage in sorted(stats.pools.items())
                  for version, capacity in sorted(usage.capacity.items()))
    return AllocatorStatus(enabled=True, leader=stats.leader, holder=stats.holder or "", services=stats.services,
                           pending=stats.pending, pools=pools, allocation_failures=stats.allocation_failures,
                           status_writes=stats.status_writes, api_errors=stats.api_errors)


def services_status(view: AgentView, source: ServiceSourcePort | None) -> ServicesStatus:
    addresses = tuple(ServiceAddressStatus(str(a.prefix), a.kind, a.service) for a in view.service_addresses)
    if source is None:
        return ServicesStatus(enabled=view.services_enabled, addresses=addresses)
    stats = source.stats
    return ServicesStatus(enabled=view.services_enabled, synced=stats.synced, reachable=stats.api_reachable,
                          services=view.service_count, local_endpoints=view.local_endpoints,
                          addresses=addresses, ignored=dict(sorted(view.services_ignored.items())),
                          relists=stats.relists, api_errors=stats.api_errors, bad_objects=stats.bad_objects)


def bfd_statuses(view: AgentView, bfd: BfdPort | None) -> tuple[BfdStatus, ...]:
    """Every wanted BFD session, with what the BFD process last reported of it."""
    sessions = bfd.sessions() if bfd is not None else {}
    out = []
    for wanted in sorted(view.bfd, key=lambda p: (p.address.version, p.address.packed)):
        ip = wanted.address
        session = sessions.get(ip)
        out.append(BfdStatus(
            peer=str(ip), state=session.state if session else "Down", diag=session.diag if session else 0,
            configured_detect_ms=float(wanted.multiplier * wanted.min_rx_ms),
            negotiated_detect_ms=session.detect_ms if session else 0.0, tx_ms=session.tx_ms if session else 0.0,
            state_changes={state: n for (p, state), n in sorted_by_reason(view.bfd_changes, ip)},
            holding_bgp_down=ip in view.bfd_held))
    return tuple(out)


def sorted_by_reason(counts: Counter[tuple[IPAddress, str]], peer: IPAddress) -> list[tuple[tuple[IPAddress, str],
                                                                                           int]]:
    """The (peer, reason) counts of one peer, ordered by reason."""
    return sorted(((key, n) for key, n in counts.items() if key[0] == peer), key=lambda item: item[0][1])


def kube_status(node_source: NodeSourcePort) -> KubeStatus:
    stats = node_source.stats
    return KubeStatus(reachable=stats.api_reachable, nodes=stats.nodes, bad_nodes=len(stats.bad_nodes),
                      events=dict(stats.events), relists=stats.relists, watches=stats.watches,
                      api_errors=stats.api_errors, last_sync_time=stats.last_sync_time)
