"""What the running agent can tell about itself: one immutable, JSON-able snapshot (pure data, no I/O).

The agent's state lives in several threads (reconcile loop, speaker, node source). Rather than letting the
metrics collector, the health endpoints and `bgpnet status` each reach into those objects, the agent copies
what they need, under its locks, into one `AgentSnapshot`; everything downstream is a pure function of it.
The same value is served as JSON on `/status` and parsed back by `bgpnet status` (`from_dict`), so the
command line and the metrics cannot disagree about what the agent knows.

Addresses and prefixes are plain strings here: the snapshot is a report, not an input to routing decisions.
"""

from __future__ import annotations

import bisect
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Route sync durations span 100 µs (nothing to do) to seconds (tens of thousands of routes after a restart).
SYNC_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                   5.0, 10.0)


@dataclass(frozen=True)
class HistogramSnapshot:
    """Cumulative bucket counts (one per bound, +Inf is `count`) and the sum of the observations."""

    bounds: tuple[float, ...] = SYNC_BUCKETS
    cumulative: tuple[int, ...] = (0,) * len(SYNC_BUCKETS)
    count: int = 0
    sum: float = 0.0


class DurationHistogram:
    """A fixed-bucket histogram the agent feeds and the collector reads (not thread-safe: guard it)."""

    def __init__(self, bounds: Sequence[float] = SYNC_BUCKETS) -> None:
        self._bounds = tuple(bounds)
        self._counts = [0] * len(self._bounds)
        self._count = 0
        self._sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self._bounds, value)
        if index < len(self._counts):
            self._counts[index] += 1
        self._count += 1
        self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        cumulative, running = [], 0
        for count in self._counts:
            running += count
            cumulative.append(running)
        return HistogramSnapshot(self._bounds, tuple(cumulative), self._count, self._sum)


@dataclass(frozen=True)
class PeerStatus:
    """One configured BGP peer. `state` is idle/connected/established/down; `since` is the wall-clock time it
    entered that state (0 when unknown). Counters are totals since the agent started."""

    address: str
    asn: int
    description: str = ""
    state: str = "idle"
    since: float = 0.0
    state_changes: Mapping[str, int] = field(default_factory=dict)  # "established"/"down" -> transitions
    updates_received: int = 0
    prefixes_received: int = 0      # announcements received (before import policy)
    withdrawals_received: int = 0
    prefixes_accepted: int = 0      # routes from this peer in the RIB now
    prefixes_advertised: int = 0    # prefixes announced to this peer now
    rejected: Mapping[str, int] = field(default_factory=dict)  # import-policy reason -> total
    malformed: Mapping[str, int] = field(default_factory=dict)  # RFC 7606 action -> malformed UPDATEs
    last_down_reason: str = ""
    down_since: float = 0.0  # wall clock: when it last stopped being Established, or was configured

    @property
    def established(self) -> bool:
        return self.state == "established"


@dataclass(frozen=True)
class RouteSyncStatus:
    installed: Mapping[str, int] = field(default_factory=dict)  # "ipv4"/"ipv6" -> routes in the kernel
    stale: int = 0                     # routes kept from before a restart, awaiting re-learning
    durations: Mapping[str, HistogramSnapshot] = field(default_factory=dict)  # "apply"/"resync"
    errors: Mapping[str, int] = field(default_factory=dict)   # RouteError.reason -> total
    changes: Mapping[str, int] = field(default_factory=dict)  # "add"/"replace"/"delete" -> total
    last_sync_time: float | None = None  # wall clock of the last finished apply or resync
    last_sync_errors: int = 0            # errors reported by that apply
    last_duration_s: float = 0.0


@dataclass(frozen=True)
class KubeStatus:
    reachable: bool = False
    nodes: int = 0
    bad_nodes: int = 0
    events: Mapping[str, int] = field(default_factory=dict)  # watch event type -> total
    relists: int = 0
    watches: int = 0
    api_errors: int = 0
    last_sync_time: float | None = None


@dataclass(frozen=True)
class SpeakerStatus:
    running: bool = False
    pid: int | None = None
    restarts: int = 0
    bad_messages: int = 0
    command_errors: int = 0
    channel_restarts: int = 0  # ExaBGP restarted because its helper never handed its pipes over


@dataclass(frozen=True)
class BfdStatus:
    """One BFD session (RFC 5880) beside a BGP session. Detection times are in milliseconds: `configured` is
    multiplier x minRx, what detection takes when the peer runs the same settings; `negotiated` is what the
    session uses now, the peer's multiplier x max(our minRx, its minTx) (0 until the peer is heard)."""

    peer: str
    state: str = "Down"  # AdminDown / Down / Init / Up
    diag: int = 0
    configured_detect_ms: float = 0.0
    negotiated_detect_ms: float = 0.0
    tx_ms: float = 0.0
    state_changes: Mapping[str, int] = field(default_factory=dict)  # state entered -> transitions
    holding_bgp_down: bool = False  # declared dead: its BGP session stays down until BFD is Up again

    @property
    def up(self) -> bool:
        return self.state == "Up"


@dataclass(frozen=True)
class BfdProcessStatus:
    running: bool = False
    pid: int | None = None
    restarts: int = 0


@dataclass(frozen=True)
class ServiceAddressStatus:
    """One Service address this node announces: its prefix, kind (cluster-cidr, cluster-ip, external-ip,
    load-balancer) and Service (namespace/name; "" for a Service CIDR)."""

    prefix: str
    kind: str
    service: str = ""


@dataclass(frozen=True)
class ServicesStatus:
    enabled: bool = False  # the config announces some kind of Service address
    synced: bool = False  # Services and EndpointSlices have been listed
    reachable: bool = False
    services: int = 0  # Services known
    local_endpoints: int = 0  # Services with a ready endpoint on this node
    addresses: tuple[ServiceAddressStatus, ...] = ()
    ignored: Mapping[str, int] = field(default_factory=dict)  # reason -> addresses not announced now
    relists: int = 0
    api_errors: int = 0
    bad_objects: int = 0


@dataclass(frozen=True)
class LoadBalancerPoolStatus:
    name: str
    family: str  # ipv4 / ipv6
    in_use: int
    capacity: int


@dataclass(frozen=True)
class AllocatorStatus:
    """The LoadBalancer allocator of this agent: pool figures are the leader's (empty on the others)."""

    enabled: bool = False
    leader: bool = False
    holder: str = ""  # the Lease's holder as last seen
    services: int = 0
    pending: int = 0
    pools: tuple[LoadBalancerPoolStatus, ...] = ()
    allocation_failures: int = 0
    status_writes: int = 0
    api_errors: int = 0


@dataclass(frozen=True)
class IpamPool:
    """Addresses reserved by bgpnet-cni in one pod CIDR, and how many it can hand out."""

    pod_cidr: str
    in_use: int
    capacity: int


@dataclass(frozen=True)
class LoopStatus:
    """A long-running loop: `age_s` is how long ago it last proved progress; it is wedged past `stall_after_s`."""

    name: str
    alive: bool
    age_s: float | None = None
    stall_after_s: float | None = None


@dataclass(frozen=True)
class AgentSnapshot:
    node: str
    version: str
    taken_at: float                   # wall clock
    started_at: float                 # wall clock
    own_node_known: bool = False      # our Node has been listed (we know our CIDRs and peers)
    routes_programmed: bool = False   # a route apply finished, without errors, since our Node was known
    startup_sync_pending: bool = False  # still keeping routes of the previous run until peers re-send theirs
    announced: tuple[str, ...] = ()
    peers: tuple[PeerStatus, ...] = ()
    routes: RouteSyncStatus = RouteSyncStatus()
    kube: KubeStatus = KubeStatus()
    speaker: SpeakerStatus = SpeakerStatus()
    ipam: tuple[IpamPool, ...] = ()
    loops: tuple[LoopStatus, ...] = ()
    reconciles: int = 0
    reconcile_failures: int = 0
    last_errors: tuple[str, ...] = ()
    peers_down_limit_s: float = 0.0   # liveness fails when every peer has been down this long (0: never)
    bfd: tuple[BfdStatus, ...] = ()
    bfd_process: BfdProcessStatus = BfdProcessStatus()
    services: ServicesStatus = ServicesStatus()
    load_balancer: AllocatorStatus = AllocatorStatus()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSnapshot:
        """Parse what `to_dict` produced (e.g. the `/status` JSON); unknown keys are ignored and missing ones
        take their defaults, so a slightly older or newer agent still reports."""
        return _build(cls, data)


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return _build(hint, value)  # type: ignore[arg-type]
    if origin is tuple and args and value is not None:
        item = args[0]
        return tuple(_convert(item, v) for v in value)
    if origin in (Mapping, dict) and len(args) == 2 and isinstance(value, Mapping):
        return {k: _convert(args[1], v) for k, v in value.items()}
    return value
