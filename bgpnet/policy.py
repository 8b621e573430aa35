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
MAX_PREFIX = "max-prefix"
REASONS = (OUTSIDE_CLUSTER, OWN_CIDR, AS_PATH_LOOP, NEXT_HOP_FAMILY, MAX_PREFIX)


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

    def reject_reason(self, route: LearnedRoute) -> str | None:
        """None when the route may be installed, else the reason label."""
        prefix = route.prefix
        if prefix.prefixlen == 0 and self.accept_default_route:
            # The way out of the cluster, from a ToR: only the loop and family checks still apply.
            return self._loop_or_family(route)
        if not any(prefix.version == c.version and prefix.subnet_of(c) for c in self.cluster_cidrs):  # type: ignore[arg-type]
            return OUTSIDE_CLUSTER
        # Overlap in either direction: a peer's /32 inside our /24 would steal one of our pods, and a supernet
        # of our /24 would be fine for other addresses but is never what a node announces.
        if any(prefix.version == c.version and prefix.overlaps(c) for c in self.own_cidrs):  # type: ignore[arg-type]
            return OWN_CIDR
        return self._loop_or_family(route)

    def _loop_or_family(self, route: LearnedRoute) -> str | None:
        prefix = route.prefix
        # RFC 4271 §9.1.2: a route whose AS_PATH already holds our own AS looped back to us (e.g. a ToR that
        # re-advertises our own prefix). ExaBGP does not check this, so we do.
        if self.own_asn in route.as_path:
            return AS_PATH_LOOP
        # The kernel installs an IPv4 route via an IPv6 gateway (RFC 5549 style) but not the reverse, and an
        # IPv4-mapped IPv6 next hop for an IPv6 prefix is not reachable on the wire: refuse mixed families.
        if route.next_hop.version != prefix.version:
            return NEXT_HOP_FAMILY
        return None

