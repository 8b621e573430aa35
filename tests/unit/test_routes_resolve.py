"""Next-hop resolution: connected hops stay, others go via the kernel's gateway, unreachable ones drop."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.model import KernelRoute
from bgpnet.routes.resolve import NextHopResolver, RouteAnswer, resolve_route, resolve_routes

KERNEL = {
    A("172.20.1.1"): RouteAnswer(None, A("172.20.1.2")),            # on the link
    A("172.20.2.2"): RouteAnswer(A("172.20.1.1"), A("172.20.1.2")),  # behind the ToR
    A("172.20.3.2"): RouteAnswer(A("172.20.1.1"), A("172.20.1.2")),
    A("172.21.1.1"): RouteAnswer(None, A("172.21.1.2")),
    A("fd00:20:2::2"): RouteAnswer(A("fd00:20:1::1"), A("fd00:20:1::2")),
}


def test_connected_next_hops_are_kept_as_they_are():
    route = KernelRoute(N("10.244.2.0/24"), (A("172.20.1.1"), A("172.21.1.1")))
    assert resolve_route(route, KERNEL.get) is route


def test_remote_next_hops_resolve_through_the_kernel_and_collapse_behind_one_gateway():
    route = KernelRoute(N("10.244.2.0/24"), (A("172.20.2.2"), A("172.20.3.2")))
    assert resolve_route(route, KERNEL.get) == KernelRoute(N("10.244.2.0/24"), (A("172.20.1.1"),))
    v6 = KernelRoute(N("fd10:244:0:2::/64"), (A("fd00:20:2::2"),))
    assert resolve_route(v6, KERNEL.get).gateways == (A("fd00:20:1::1"),)


def test_unreachable_and_link_local_hops_drop_their_paths():
    mixed = KernelRoute(N("10.244.2.0/24"), (A("172.20.1.1"), A("192.0.2.9")))
    assert resolve_route(mixed, KERNEL.get).gateways == (A("172.20.1.1"),)
    routes, unresolved = resolve_routes([KernelRoute(N("10.244.9.0/24"), (A("192.0.2.9"),)),
                                         KernelRoute(N("fd10:244:0:9::/64"), (A("fe80::1"),))], KERNEL.get)
    assert routes == {} and unresolved == [N("10.244.9.0/24"), N("fd10:244:0:9::/64")]


class CountingLookup:
    def __init__(self):
        self.calls = []

    def route_get(self, destination):
        self.calls.append(destination)
        return KERNEL.get(destination)

    def close(self):
        pass


def test_resolver_looks_each_address_up_once_until_invalidated():
    lookup = CountingLookup()
    resolver = NextHopResolver(lookup)
    routes = {N(f"10.244.{i}.0/24"): KernelRoute(N(f"10.244.{i}.0/24"), (A("172.20.2.2"),)) for i in range(50)}
    resolved, _ = resolver.resolve(routes)
    assert {r.gateways for r in resolved.values()} == {(A("172.20.1.1"),)}
    assert resolver.sources([A("172.20.1.1"), A("192.0.2.9")]) == {A("172.20.1.1"): A("172.20.1.2")}
    assert len(lookup.calls) == 3
    resolver.invalidate()
    resolver.resolve(routes)
    assert len(lookup.calls) == 4
