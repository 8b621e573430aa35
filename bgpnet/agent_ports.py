"""The seams of the agent: what it needs from the node source, the speaker, the kernel and the route table.

The agent is written against these protocols only, so unit tests drive it with small fakes and the real
adapters (bgpnet.kube, bgpnet.speaker, bgpnet.routes) are plugged in by the CLI. Every port is complete,
including what the adapter reports for status and metrics: a fake implements all of it, and the agent never
asks an adapter what it happens to have, so tests run the same code paths as production.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from bgpnet.bfd.process import BfdSessionState
from bgpnet.lb_allocation import PoolUsage
from bgpnet.model import BfdPeer, BgpPeer, IPAddress, IPNetwork, KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.table import ApplyResult
from bgpnet.snapshot import LoopStatus
from bgpnet.speaker.sessions import SessionState


class NodeStatsView(Protocol):
    """What the node source reports of its watch of the API (bgpnet.kube.node_source.NodeSourceStats)."""

    events: Mapping[str, int]
    relists: int
    watches: int
    api_errors: int
    bad_nodes: Mapping[str, str]
    api_reachable: bool
    last_sync_time: float | None
    nodes: int


class NodeSourcePort(Protocol):
    """The Nodes of the cluster (bgpnet.kube.node_source.NodeSource): `run` calls back with every change."""

    def run(self, stop: threading.Event) -> None: ...

    @property
    def stats(self) -> NodeStatsView: ...


class ServiceStatsView(Protocol):
    """What the Service source reports (bgpnet.kube.service_source.ServiceSourceStats)."""

    services: int
    slices: int
    relists: int
    api_errors: int
    bad_objects: int
    api_reachable: bool
    synced: bool


class ServiceSourcePort(Protocol):
    """The Services and EndpointSlices of the cluster (bgpnet.kube.service_source.ServiceSource): `run` calls
    back with the changed Services (None: deleted) and the changed "ready local endpoint" facts, by key."""

    def run(self, stop: threading.Event) -> None: ...

    @property
    def stats(self) -> ServiceStatsView: ...


class AllocatorStatsView(Protocol):
    """What the LoadBalancer allocator reports (bgpnet.kube.lb_allocator.AllocatorStats)."""

    leader: bool
    holder: str | None
    services: int
    pending: int
    pools: Mapping[str, PoolUsage]
    allocation_failures: int
    status_writes: int
    api_errors: int


class LoadBalancerPort(Protocol):
    """The leader-elected LoadBalancer address allocator (bgpnet.kube.lb_allocator.LoadBalancerAllocator)."""

    def run(self, stop: threading.Event) -> None: ...
    def stats(self) -> AllocatorStatsView: ...


class SpeakerPort(Protocol):
    """The BGP speaker (bgpnet.speaker.speaker.Speaker: ExaBGP and its API channel)."""

    def start(self) -> None: ...
    def set(self, peers: Collection[BgpPeer], announcements: Collection[IPNetwork]) -> None: ...
    def stop(self) -> None: ...

    # For status and metrics.
    restarts: int
    bad_messages: int
    command_errors: int
    channel_restarts: int

    @property
    def pid(self) -> int | None: ...
    def sessions(self) -> Mapping[IPAddress, SessionState]: ...
    def loops(self) -> tuple[LoopStatus, ...]: ...


class BfdPort(Protocol):
    """The BFD process (bgpnet.bfd.process.BfdProcess): single-hop BFD sessions beside BGP sessions."""

    def start(self) -> None: ...
    def set(self, peers: Collection[BfdPeer]) -> None: ...
    def stop(self) -> None: ...

    # For status and metrics.
    restarts: int

    @property
    def pid(self) -> int | None: ...
    def sessions(self) -> Mapping[IPAddress, BfdSessionState]: ...


class OutgoingNatPort(Protocol):
    """The node's natOutgoing rules (bgpnet.nat.outgoing.OutgoingNat)."""

    def sync(self, enabled: bool, pod_cidrs: Collection[IPNetwork], cluster_cidrs: Collection[IPNetwork], *,
             force: bool = False) -> bool: ...


class NextHopPort(Protocol):
    """Kernel lookups (bgpnet.routes.resolve.NextHopResolver): source addresses towards peers and gateways
    for learned next hops that are not directly connected."""

    def sources(self, peers: Collection[IPAddress]) -> Mapping[IPAddress, IPAddress]: ...
    def other_family_sources(self, wanted: Mapping[IPAddress, int]) -> Mapping[IPAddress, IPAddress]: ...
    def resolve(self, routes: Mapping[Prefix, KernelRoute]) -> tuple[dict[Prefix, KernelRoute],
                                                                         list[Prefix]]: ...
    def invalidate(self) -> None: ...

    # Bumped whenever cached answers were dropped: routes resolved under another generation are rebuilt.
    generation: int


class RouteTablePort(Protocol):
    """The kernel route table (bgpnet.routes.table.RouteTable). Every method is the agent's to call: a fake
    implements them all, so tests run the same code paths as production."""

    def apply(self, desired: Collection[KernelRoute]) -> ApplyResult: ...
    def apply_changes(self, desired: Mapping[Prefix, KernelRoute], prefixes: Collection[Prefix]
                      ) -> ApplyResult: ...
    def resync(self, desired: Collection[KernelRoute]) -> ApplyResult: ...
    def start_resync(self, on_done: Callable[[], None]) -> None: ...
    def finish_resync(self, desired: Collection[KernelRoute]) -> ApplyResult | None: ...
    def resync_running(self) -> bool: ...
    def dump(self) -> Mapping[Prefix, KernelRoute]: ...
    def installed(self) -> Mapping[Prefix, KernelRoute]: ...
    def installed_by_family(self) -> dict[str, int]: ...
    def close(self) -> None: ...
