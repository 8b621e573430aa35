"""Next-hop resolution: turn learned BGP next hops into gateways the kernel can install.

A next hop on a directly connected subnet is installable as it is. One that is not — the originating node's
address reflected unchanged by an iBGP route reflector, or a multihop eBGP peer — makes the kernel refuse the
route (ENETUNREACH: "Nexthop has invalid gateway"), so it is resolved the way a router resolves recursive next
hops: look the next hop up in the kernel's own routes (`ip route get`, one RTM_GETROUTE) and install the
route via the gateway the kernel would use towards it. The same lookup gives the source address the kernel
would pick towards a peer, which is the `local-address` a session needs for `next-hop self`, and the
interface it leaves through, whose address of the other family is a multiprotocol session's next hop for
that family.

The decisions are pure (`resolve_route`, `resolve_routes`); the one side effect is `KernelLookup.route_get`,
called once per distinct address (one raw RTM_GETROUTE, `bgpnet.routes.route_get`) and cached until
`invalidate()` (the agent invalidates on every periodic resync and when sessions change, so a changed underlay
is picked up).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from bgpnet.model import IPAddress, KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.route_answer import KernelLookup, RouteAnswer

__all__ = ["KernelLookup", "NextHopResolver", "RouteAnswer", "resolve_route", "resolve_routes"]

RTN_UNICAST = 1


def resolve_route(route: KernelRoute, answer_for: Callable[[IPAddress], RouteAnswer | None]
                  ) -> KernelRoute | None:
    """The route with every gateway replaced by what the kernel reaches it through; paths whose next hop is
    unreachable are dropped (None when none is left). Two next hops behind the same gateway collapse into
    one path, as a router's recursive resolution does."""
    gateways = []
    for next_hop in route.gateways:
        if next_hop.is_link_local:
            continue  # meaningless without its interface, which BGP does not carry
        answer = answer_for(next_hop)
        if answer is None:
            continue
        gateway = answer.gateway if answer.gateway is not None else next_hop
        if gateway.version != next_hop.version:
            continue  # an IPv6 route towards an IPv4 hop (or the reverse) is not ours to invent
        gateways.append(gateway)
    if not gateways:
        return None
    resolved = KernelRoute(route.prefix, tuple(gateways))
    return route if resolved == route else resolved


def resolve_routes(routes: Iterable[KernelRoute], answer_for: Callable[[IPAddress], RouteAnswer | None]
                   ) -> tuple[dict[Prefix, KernelRoute], list[Prefix]]:
    """Resolve every route; returns the installable routes and the prefixes left out (no usable next hop).

    Thousands of routes share a handful of next-hop sets (one per peer, or per ECMP group), so the gateways
    are resolved once per distinct set and each route then costs one dict lookup: unchanged (the usual case:
    directly connected next hops) keeps the route object itself, so later diffs see identity."""
    out: dict[Prefix, KernelRoute] = {}
    unresolved: list[Prefix] = []
    by_gateways: dict[tuple[IPAddress, ...], tuple[IPAddress, ...] | None] = {}
    for route in routes:
        gateways = route.gateways
        if not gateways:
            out[route.prefix] = route
            continue
        try:
            resolved_gateways = by_gateways[gateways]
        except KeyError:
            resolved = resolve_route(route, answer_for)
            resolved_gateways = by_gateways[gateways] = None if resolved is None else resolved.gateways
        if resolved_gateways is None:
            unresolved.append(route.prefix)
        elif resolved_gateways == gateways:
            out[route.prefix] = route
        else:
            out[route.prefix] = KernelRoute(route.prefix, resolved_gateways)
    return out, unresolved


class NextHopResolver:
    """Cached kernel lookups for next hops and peer source addresses (thread-safe)."""

    def __init__(self, lookup: KernelLookup | None = None) -> None:
        self._lookup = lookup
        self._cache: dict[IPAddress, RouteAnswer | None] = {}
        self._addresses: dict[tuple[int, int], tuple[IPAddress, ...]] = {}
        self._lock = threading.Lock()
        self.lookups = 0
        # Bumped by every invalidate(): a consumer that keeps resolved routes knows they may now be outdated.
        self.generation = 0

    def answer(self, address: IPAddress) -> RouteAnswer | None:
        with self._lock:
            if address in self._cache:
                return self._cache[address]
        if self._lookup is None:
            from bgpnet.routes.route_get import RawRouteLookup  # one raw socket, no pyroute2 (~20 MB)

            self._lookup = RawRouteLookup()
        answer = self._lookup.route_get(address)
        with self._lock:
            self._cache[address] = answer
            self.lookups += 1
        return answer

    def source_for(self, peer: IPAddress) -> IPAddress | None:
        answer = self.answer(peer)
        return answer.source if answer is not None else None

    def sources(self, peers: Iterable[IPAddress]) -> dict[IPAddress, IPAddress]:
        out = {}
        for peer in peers:
            source = self.source_for(peer)
            if source is not None:
                out[peer] = source
        return out

    def other_family_sources(self, wanted: Mapping[IPAddress, int]) -> dict[IPAddress, IPAddress]:
        """For each peer, this node's first global address of the asked IP version on the interface the kernel
        uses towards that peer (the next hop a multiprotocol session announces for that family); peers
        without one are left out."""
        out = {}
        for peer, version in wanted.items():
            answer = self.answer(peer)
            if answer is None or answer.interface is None:
                continue
            addresses = self._interface_addresses(answer.interface, version)
            if addresses:
                out[peer] = addresses[0]
        return out

    def _interface_addresses(self, interface: int, version: int) -> tuple[IPAddress, ...]:
        key = (interface, version)
        with self._lock:
            if key in self._addresses:
                return self._addresses[key]
        lookup = self._lookup  # created by answer(), which found the interface
        addresses = tuple(lookup.interface_addresses(interface, version)) if lookup is not None else ()
        with self._lock:
            self._addresses[key] = addresses
        return addresses

    def resolve(self, routes: Mapping[Prefix, KernelRoute]) -> tuple[dict[Prefix, KernelRoute],
                                                                         list[Prefix]]:
        return resolve_routes(routes.values(), self.answer)

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._addresses.clear()
            self.generation += 1

    def close(self) -> None:
        if self._lookup is not None:
            self._lookup.close()
