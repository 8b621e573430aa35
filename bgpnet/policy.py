"""Import policy: which learned prefixes may enter the kernel (pure).

BGP trusts its peers; a pod network must not. A peer (or a misconfigured ToR) can announce a default route, a
node's own pod CIDR or any prefix at all, and ExaBGP performs no AS-path loop check, so bgpnet decides here.
Each refusal carries a short, fixed reason label so it can be counted per peer without unbounded labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpnet.model import IPNetwork, LearnedRoute

OUTSIDE_CLUSTER = "outside-cluster-cidrs"
OWN_CIDR = "own-pod-cidr"
AS_PATH_LOOP = "as-path-loop"
NEXT_HOP_FAMILY = "next-hop-family"
REASONS = (OUTSIDE_CLUSTER, OWN_CIDR, AS_PATH_LOOP, NEXT_HOP_FAMILY)


@dataclass(frozen=True)
class ImportPolicy:
    cluster_cidrs: tuple[IPNetwork, ...]
    own_cidrs: tuple[IPNetwork, ...]
    own_asn: int

    def reject_reason(self, route: LearnedRoute) -> str | None:
        """None when the route may be installed, else the reason label."""
        prefix = route.prefix
        if not any(prefix.version == c.version and prefix.subnet_of(c) for c in self.cluster_cidrs):  # type: ignore[arg-type]
            return OUTSIDE_CLUSTER
        # Overlap in either direction: a peer's /32 inside our /24 would steal one of our pods, and a supernet
        # of our /24 would be fine for other addresses but is never what a node announces.
        if any(prefix.version == c.version and prefix.overlaps(c) for c in self.own_cidrs):  # type: ignore[arg-type]
            return OWN_CIDR
        # RFC 4271 §9.1.2: a route whose AS_PATH already holds our own AS looped back to us (e.g. a ToR that
        # re-advertises our own prefix). ExaBGP does not check this, so we do.
        if self.own_asn in route.as_path:
            return AS_PATH_LOOP
        # The kernel installs an IPv4 route via an IPv6 gateway (RFC 5549 style) but not the reverse, and an
        # IPv4-mapped IPv6 next hop for an IPv6 prefix is not reachable on the wire: refuse mixed families.
        if route.next_hop.version != prefix.version:
            return NEXT_HOP_FAMILY
        return None

