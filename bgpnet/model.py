"""Typed, immutable values passed between bgpnet's layers.

Every layer speaks these types: the node source produces `NodeInfo`, the pure desired-state function turns
nodes and learned routes into `BgpPeer`s, announcements and `KernelRoute`s, the speaker reports
`LearnedRoute`s and the route table programs `KernelRoute`s. Nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from bgpnet.prefix import Prefix

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# The three actions RFC 7606 prescribes for a malformed UPDATE, weakest first (speaker events, status, metrics).
ATTRIBUTE_DISCARD = "attribute-discard"
TREAT_AS_WITHDRAW = "treat-as-withdraw"
SESSION_RESET = "session-reset"
MALFORMED_ACTIONS = (ATTRIBUTE_DISCARD, TREAT_AS_WITHDRAW, SESSION_RESET)


@dataclass(frozen=True)
class NodeInfo:
    """What bgpnet needs of one Kubernetes Node, already validated."""

    name: str
    internal_ips: tuple[IPAddress, ...]
    pod_cidrs: tuple[IPNetwork, ...]
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    ready: bool = True

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)

    def internal_ip(self, version: int) -> IPAddress | None:
        """The node's first InternalIP of the given IP version, the address its BGP sessions use."""
        for ip in self.internal_ips:
            if ip.version == version:
                return ip
        return None


class Md5Password:
    """A TCP MD5 (RFC 2385) key that never shows itself: repr/str are redacted and it is not a dataclass, so
    `dataclasses.asdict` of a peer keeps it opaque and `json.dumps` fails rather than leak it. Equal keys
    compare equal, so a changed password changes the peer (and re-peers it)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself: only for the speaker's config file (mode 0600), never for logs or status."""
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Md5Password) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("md5", self._value))

    def __repr__(self) -> str:
        return "Md5Password(<redacted>)"

    __str__ = __repr__


@dataclass(frozen=True)
class BgpPeer:
    """One BGP session as the speaker should run it (identity is the whole value: any change re-peers)."""

    address: IPAddress
    asn: int
    local_address: IPAddress
    local_asn: int
    hold_time: int = 9
    port: int = 179
    passive: bool = False
    description: str = ""
    md5: Md5Password | None = None
    # Outgoing TTL for multihop eBGP; None leaves the kernel default (64), which already crosses hops.
    ttl: int | None = None
    # Multiprotocol (RFC 4760): the IP versions whose unicast prefixes the session carries, sorted; empty: only
    # the peer address's own.
    families: tuple[int, ...] = ()
    # The next hop announced with prefixes of the family other than the session's. `next-hop self` is the
    # session's local address, of the wrong family: an IPv6 prefix over an IPv4 session needs an IPv6 next hop
    # in MP_REACH_NLRI (RFC 2545), an IPv4 prefix over an IPv6 session an IPv4 one.
    other_family_next_hop: IPAddress | None = None
    # A node-to-node mesh session: it gets only announcements meant for the mesh (pod CIDRs, not Service
    # addresses, which every node's kube-proxy serves itself).
    mesh: bool = False

    def carried_versions(self) -> tuple[int, ...]:
        return self.families or (self.address.version,)

    def next_hop_for(self, version: int) -> IPAddress | None:
        """The explicit next hop for prefixes of IP version `version`; None: `next-hop self`."""
        return None if version == self.address.version else self.other_family_next_hop


@dataclass(frozen=True)
class BfdPeer:
    """One single-hop BFD session (RFC 5881) as the BFD process should run it, beside a BGP session."""

    address: IPAddress
    local_address: IPAddress
    min_tx_ms: int = 300
    min_rx_ms: int = 300
    multiplier: int = 3


@dataclass(frozen=True)
class Announcement:
    """One prefix this node announces, with the communities attached to it (same to every peer)."""

    prefix: IPNetwork
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    # False: only for configured peers (routers), never for mesh peers (Service addresses).
    to_mesh: bool = True

    def __str__(self) -> str:
        return str(self.prefix)


@dataclass(frozen=True)
class ServiceInfo:
    """What bgpnet needs of one Kubernetes Service, already validated (addresses that do not parse are left
    out by the parser). Kept per Service in every agent, so only the fields bgpnet reads."""

    namespace: str
    name: str
    type: str = "ClusterIP"  # ClusterIP, NodePort, LoadBalancer, ExternalName
    cluster_ips: tuple[IPAddress, ...] = ()  # spec.clusterIPs (none for a headless Service)
    external_ips: tuple[IPAddress, ...] = ()  # spec.externalIPs
    ingress_ips: tuple[IPAddress, ...] = ()  # status.loadBalancer.ingress[].ip
    external_local: bool = False  # spec.externalTrafficPolicy: Local
    internal_local: bool = False  # spec.internalTrafficPolicy: Local
    load_balancer_class: str | None = None  # spec.loadBalancerClass
    ip_families: tuple[int, ...] = ()  # spec.ipFamilies, as IP versions, in order
    # Addresses asked for: spec.loadBalancerIP and the bgpnet.io/load-balancer-ips annotation, as written.
    requested_ips: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # only the bgpnet.io/ ones

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def annotation(self, key: str) -> str | None:
        return dict(self.annotations).get(key)


@dataclass(frozen=True, slots=True)
class LearnedRoute:
    """A prefix received from one peer, as the speaker decoded it (one per prefix of a full table: slots, no
    per-object dict)."""

    peer: IPAddress
    prefix: Prefix
    next_hop: IPAddress
    as_path: tuple[int, ...] = ()
    communities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KernelRoute:
    """A route bgpnet wants in the kernel: one prefix, one or more gateways (ECMP when several); slots, as
    there is one per installed route."""

    prefix: Prefix
    gateways: tuple[IPAddress, ...] = field(default=())

    def __post_init__(self) -> None:
        # Canonical order so equal sets of next hops compare equal and diffs stay quiet. A one-gateway tuple is
        # canonical already (the common case, built for every prefix of a full table: skip the sort).
        if type(self.gateways) is tuple and len(self.gateways) <= 1:
            return
        object.__setattr__(self, "gateways", tuple(sorted(set(self.gateways), key=lambda ip: ip.packed)))


@dataclass(frozen=True)
class Rejected:
    """A learned route the import policy refused, with the peer and a short, bounded reason label."""

    peer: IPAddress
    prefix: Prefix
    reason: str
