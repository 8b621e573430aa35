"""Import policy: which learned prefixes may enter the kernel (pure).

BGP trusts its peers; a pod network must not. A peer (or a misconfigured ToR) can announce a default route, a
node's own pod CIDR or any prefix at all, and ExaBGP performs no AS-path loop check, so bgpnet decides here.
Each refusal carries a short, fixed reason label so it can be counted per peer without unbounded labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpnet.model import IPAddress, IPNetwork, LearnedRoute
from bgpnet.prefix import NETMASK

OUTSIDE_CLUSTER = "outside-cluster-cidrs"
OWN_CIDR = "own-pod-cidr"
AS_PATH_LOOP = "as-path-loop"
NEXT_HOP_FAMILY = "next-hop-family"
MAX_PREFIX = "max-prefix"
BFD_DOWN = "bfd-down"  # in flight from a peer BFD has declared dead
WRONG_ORIGIN = "wrong-origin"
POD_CIDR_MORE_SPECIFIC = "pod-cidr-more-specific"
REASONS = (OUTSIDE_CLUSTER, OWN_CIDR, AS_PATH_LOOP, NEXT_HOP_FAMILY, MAX_PREFIX, WRONG_ORIGIN,
           POD_CIDR_MORE_SPECIFIC, BFD_DOWN)


@dataclass(frozen=True)
class NodeOrigin:
    """Who may originate routes inside one other Node's pod CIDR: that Node's ASN (the last AS of an eBGP
    path) and, over iBGP where the AS path is empty, the Node's own addresses as next hop."""

    cidr: IPNetwork
    asn: int
    addresses: frozenset[IPAddress]


@dataclass(frozen=True)
class OriginTable:
    """Every other Node's pod CIDRs with their origins, built once per Node list and shared by the policies
    of all peers."""

    origins: tuple[NodeOrigin, ...] = ()
    # (version, prefix length) -> {network as int: NodeOrigin}: a route needs one dict lookup per distinct
    # Node CIDR length (usually one) instead of a scan over every Node.
    _index: dict[tuple[int, int], dict[int, NodeOrigin]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[int, int], dict[int, NodeOrigin]] = {}
        for origin in self.origins:
            cidr = origin.cidr
            index.setdefault((cidr.version, cidr.prefixlen), {})[int(cidr.network_address)] = origin
        object.__setattr__(self, "_index", index)

    def __bool__(self) -> bool:
        return bool(self.origins)

    def refusal(self, route: LearnedRoute, version: int, address: int, length: int) -> str | None:
        """Why a prefix inside another Node's pod CIDR is refused, None when it is not (or is in no Node's CIDR).

        A more specific of a Node's pod CIDR is refused from everybody: a node announces its CIDR exactly as
        the API assigned it, so a longer prefix is never legitimate, and longest match would send part of
        that Node's pods to whoever announced it — whatever its AS path claims, since any peer can write any
        AS path. The exact CIDR must come from that Node: over eBGP its AS path ends in the Node's ASN (a ToR
        or a spine in between adds its own ASNs in front), over iBGP (empty path: mesh, or a route reflector,
        which keeps the originator's next hop) its next hop is one of the Node's addresses."""
        bits = 32 if version == 4 else 128
        for (v, cidr_len), by_net in self._index.items():
            if v != version or cidr_len > length:
                continue
            origin = by_net.get(address & (((1 << cidr_len) - 1) << (bits - cidr_len)))
            if origin is None:
                continue
            if cidr_len < length:
                return POD_CIDR_MORE_SPECIFIC
            if route.as_path:
                return None if route.as_path[-1] == origin.asn else WRONG_ORIGIN
            return None if route.next_hop in origin.addresses else WRONG_ORIGIN
        return None


@dataclass(frozen=True)
class ImportPolicy:
    """The policy for routes from one peer. `own_asn` is the local AS of that session (with AS per rack or
    per node it differs from the cluster ASN); the default route is accepted only when configured for the
    peer (a ToR offering the way out), and max-prefix counts what this peer got accepted."""

    cluster_cidrs: tuple[IPNetwork, ...]
    own_cidrs: tuple[IPNetwork, ...]
    own_asn: int
    accept_default_route: bool = False
    max_prefixes: int = 0  # 0: no limit
    max_prefix_action: str = "warn"
    restart_after: float = 60.0  # seconds a torn-down session stays down
    # Other Nodes' pod CIDRs and who may originate them (see OriginTable.allows).
    origins: OriginTable = field(default_factory=OriginTable)
    # The CIDRs above as (version, network as int, netmask as int, prefix length): this check runs for every
    # prefix of a full-table transfer, and `subnet_of`/`overlaps` cost microseconds each in Python while two
    # integer masks give the same answer for aligned prefixes.
    _cluster: tuple[tuple[int, int, int, int], ...] = field(init=False, repr=False, compare=False)
    _own: tuple[tuple[int, int, int, int], ...] = field(init=False, repr=False, compare=False)
    # bool(origins), once: `OriginTable.__bool__` is a Python call, and the check runs for every prefix.
    _check_origins: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def as_ints(cidrs: tuple[IPNetwork, ...]) -> tuple[tuple[int, int, int, int], ...]:
            return tuple((c.version, int(c.network_address), int(c.netmask), c.prefixlen) for c in cidrs)

        object.__setattr__(self, "_cluster", as_ints(self.cluster_cidrs))
        object.__setattr__(self, "_own", as_ints(self.own_cidrs))
        object.__setattr__(self, "_check_origins", bool(self.origins))

    def reject_reason(self, route: LearnedRoute) -> str | None:
        """None when the route may be installed, else the reason label."""
        version, address, length = route.prefix
        # The default route, when accepted from this peer (the way out of the cluster, from a ToR), skips the
        # CIDR checks; the loop and family checks below still apply.
        if length or not self.accept_default_route:
            # Inside a cluster CIDR: the CIDR is no longer than the prefix and the prefix, masked by it, is it.
            for v, c_net, c_mask, c_len in self._cluster:
                if v == version and c_len <= length and address & c_mask == c_net:
                    break
            else:
                return OUTSIDE_CLUSTER
            # Overlap in either direction: a peer's /32 inside our /24 would steal one of our pods, and a
            # supernet of our /24 would be fine for other addresses but is never what a node announces. Two
            # prefixes overlap exactly when they agree under the shorter one's mask.
            for v, o_net, o_mask, o_len in self._own:
                if v == version:
                    mask = o_mask if o_len <= length else NETMASK[version][length]
                    if address & mask == o_net & mask:
                        return OWN_CIDR
            if self._check_origins:
                refused = self.origins.refusal(route, version, address, length)
                if refused is not None:
                    return refused
        # RFC 4271 §9.1.2: a route whose AS_PATH already holds our own AS looped back to us (e.g. a ToR that
        # re-advertises our own prefix). ExaBGP does not check this, so we do.
        if self.own_asn in route.as_path:
            return AS_PATH_LOOP
        # Mixed families: an IPv4 prefix with an IPv6 next hop (RFC 8950, formerly 5549: Extended Next Hop over
        # a multiprotocol session) is installed as an IPv4 route via an IPv6 gateway (RTA_VIA). The kernel has
        # no IPv6 route via an IPv4 gateway, and an IPv4-mapped IPv6 next hop (::ffff:a.b.c.d, what a router
        # sends for IPv6 over an IPv4 session when it has no IPv6 address to offer, e.g. 6PE) is no neighbour on
        # the wire: both refused.
        next_hop = route.next_hop
        if version == 6 and (next_hop.version != 6 or next_hop.ipv4_mapped is not None):
            return NEXT_HOP_FAMILY
        return None


