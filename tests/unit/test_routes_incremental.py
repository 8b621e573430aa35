"""The incremental BGP → kernel path: RIB change tracking, the desired-route view, planning by changed prefixes,
RouteTable.apply_changes, and the fast paths (hashed prefixes, integer policy checks) agreeing with the
stdlib semantics they replace."""

from __future__ import annotations

import errno
import ipaddress
from ipaddress import ip_address as A
from ipaddress import ip_network as N

from hypothesis import given
from hypothesis import strategies as st
from test_routes_table import FakeRouteNetlink, route

from bgpnet.model import KernelRoute, LearnedRoute
from bgpnet.policy import ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib
from bgpnet.routes import RouteTable
from bgpnet.routes.desired import DesiredRoutes
from bgpnet.routes.plan import plan_changes, plan_prefixes
from bgpnet.routes.resolve import NextHopResolver, RouteAnswer

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

POLICY = ImportPolicy(cluster_cidrs=(N("10.0.0.0/8"),), own_cidrs=(N("10.244.1.0/24"),), own_asn=64512)
P1, P2 = A("172.31.0.2"), A("172.31.0.3")


def learned(prefix: str, peer=P1, path=(65000,)) -> LearnedRoute:
    return LearnedRoute(peer, R(prefix), peer, path)


# --- RIB change tracking --------------------------------------------------------------------------------------
def test_rib_reports_each_changed_prefix_once_and_then_forgets_them():
    rib = Rib()
    rib.update(P1, [learned("10.1.0.0/24"), learned("10.2.0.0/24")], [], POLICY)
    assert rib.take_changes() == {R("10.1.0.0/24"): rib.routes[R("10.1.0.0/24")],
                                  R("10.2.0.0/24"): rib.routes[R("10.2.0.0/24")]}
    assert rib.take_changes() == {}
    rib.update(P1, [], [R("10.1.0.0/24")], POLICY)
    assert rib.take_changes() == {R("10.1.0.0/24"): None}
    assert R("10.1.0.0/24") not in rib.routes


def test_rib_change_tracking_covers_ecmp_peer_drop_and_refused_reannouncement():
    rib = Rib()
    rib.update(P1, [learned("10.1.0.0/24")], [], POLICY)
    rib.take_changes()
    rib.update(P2, [learned("10.1.0.0/24", P2)], [], POLICY)  # second equal path: the ECMP route changes
    assert rib.take_changes() == {R("10.1.0.0/24"): KernelRoute(R("10.1.0.0/24"), (P1, P2))}
    assert rib.routes[R("10.1.0.0/24")].gateways == (P1, P2)
    rib.update(P2, [learned("10.1.0.0/24", P2)], [], POLICY)  # same path again: nothing changes
    assert rib.take_changes() == {}
    rib.drop_peer(P2)
    assert rib.take_changes() == {R("10.1.0.0/24"): KernelRoute(R("10.1.0.0/24"), (P1,))}
    rib.update(P1, [learned("10.1.0.0/24", path=(64512,))], [], POLICY)  # refused now: implicit withdraw
    assert rib.take_changes() == {R("10.1.0.0/24"): None} and not rib.routes


# --- planning and applying by changed prefixes ----------------------------------------------------------------
ops = st.lists(st.tuples(st.sampled_from(["announce", "withdraw", "drop"]), st.sampled_from([P1, P2]),
                         st.sampled_from(["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"]),
                         st.sampled_from([(65000,), (65000, 65001)])), max_size=25)


@given(ops)
def test_rib_changes_replayed_onto_the_last_view_give_the_current_routes(steps):
    rib, view = Rib(), {}
    for op, peer, prefix, path in steps:
        if op == "announce":
            rib.update(peer, [learned(prefix, peer, path)], [], POLICY)
        elif op == "withdraw":
            rib.update(peer, [], [R(prefix)], POLICY)
        else:
            rib.drop_peer(peer)
        for changed, now in rib.take_changes().items():
            assert now == rib.routes.get(changed)
            if now is None:
                view.pop(changed, None)
            else:
                view[changed] = now
        assert view == dict(rib.routes)


def test_plan_prefixes_matches_the_full_plan_restricted_to_those_prefixes():
    installed = {r.prefix: r for r in [route("10.0.1.0/24", "172.31.0.2"), route("10.0.2.0/24", "172.31.0.2"),
                                       route("10.0.3.0/24", "172.31.0.2")]}
    desired = {r.prefix: r for r in [route("10.0.2.0/24", "172.31.0.3"), route("10.0.3.0/24", "172.31.0.2"),
                                     route("10.0.4.0/24", "172.31.0.2"), route("10.0.5.0/24")]}
    full = plan_changes(desired, installed)
    part = plan_prefixes(desired, installed, set(installed) | set(desired))
    assert (sorted(map(str, part.delete)), part.replace, part.add, part.invalid) == \
        (sorted(map(str, full.delete)), full.replace, full.add, full.invalid)
    only = plan_prefixes(desired, installed, [R("10.0.1.0/24")])
    assert (only.delete, only.add, only.replace) == ([R("10.0.1.0/24")], [], [])


def test_apply_changes_installs_only_the_named_prefixes_and_keeps_the_cache_true():
    fake = FakeRouteNetlink()
    table = RouteTable(fake)
    desired = {r.prefix: r for r in [route("10.0.1.0/24", "172.31.0.2"), route("10.0.2.0/24", "172.31.0.2")]}
    table.apply(desired.values())
    desired[R("10.0.3.0/24")] = route("10.0.3.0/24", "172.31.0.2")
    del desired[R("10.0.1.0/24")]
    result = table.apply_changes(desired, {R("10.0.3.0/24"), R("10.0.1.0/24")})
    assert (result.added, result.removed, result.errors) == (1, 1, ())
    assert fake.batches[-1].add == [desired[R("10.0.3.0/24")]] and len(fake.batches[-1].delete) == 1
    assert dict(table.installed()) == desired == fake.own()
    assert table.installed_by_family() == {"ipv4": 2, "ipv6": 0}
    desired[R("fd00:1::/64")] = route("fd00:1::/64", "fd00:ff::2")
    table.apply_changes(desired, {R("fd00:1::/64")})
    assert table.installed_by_family() == {"ipv4": 2, "ipv6": 1}
    assert table.apply_changes(desired, set()).errors == () and len(fake.batches) == 3  # nothing to send


def test_apply_changes_retries_a_conflict_at_every_apply_until_the_owner_is_gone():
    fake = FakeRouteNetlink()
    table = RouteTable(fake)
    table.apply([])
    foreign = route("10.0.9.0/24", "172.31.0.9")
    fake.put(foreign, proto=4)  # another owner (static) holds the prefix
    desired = {R("10.0.9.0/24"): route("10.0.9.0/24", "172.31.0.2")}
    assert table.apply_changes(desired, {R("10.0.9.0/24")}).errors[0].reason == "conflict"
    assert table.apply_changes(desired, set()).errors[0].reason == "conflict"  # not forgotten
    del fake.kernel[(R("10.0.9.0/24"), 0)]
    assert table.apply_changes(desired, set()).added == 1
    assert fake.own() == desired


def test_apply_changes_after_lost_answers_rereads_the_kernel_and_applies_everything():
    fake = FakeRouteNetlink()
    table = RouteTable(fake)
    table.apply([route("10.0.1.0/24", "172.31.0.2")])
    fake.explode_next_send = True
    desired = {r.prefix: r for r in [route("10.0.1.0/24", "172.31.0.2"), route("10.0.2.0/24", "172.31.0.2")]}
    try:
        table.apply_changes(desired, {R("10.0.2.0/24")})
    except OSError as exc:
        assert exc.errno == errno.ENOBUFS
    dumps = fake.dumps
    table.apply_changes({R("10.0.1.0/24"): desired[R("10.0.1.0/24")]}, set())  # forgets 10.0.2 was wanted
    assert fake.dumps == dumps + 1 and fake.own() == {R("10.0.1.0/24"): desired[R("10.0.1.0/24")]}


# --- the desired view ------------------------------------------------------------------------------------------
class Lookup:
    def __init__(self) -> None:
        self.calls = 0

    def route_get(self, destination):
        self.calls += 1
        if str(destination).startswith("192.0.2."):
            return None  # unreachable
        if str(destination) == "10.99.0.1":  # not connected: behind a gateway
            return RouteAnswer(A("172.31.0.1"), None)
        return RouteAnswer(None, None)

    def close(self):
        pass


def test_desired_view_updates_by_prefix_exactly_like_a_rebuild():
    lookup = Lookup()
    resolver = NextHopResolver(lookup)
    learned_routes = {r.prefix: r for r in [route("10.0.1.0/24", "172.31.0.2"), route("10.0.2.0/24", "10.99.0.1"),
                                            route("10.0.3.0/24", "192.0.2.1")]}
    stale = {R("10.0.4.0/24"): route("10.0.4.0/24", "172.31.0.5")}
    view = DesiredRoutes()
    view.rebuild(learned_routes, stale, resolver.resolve)
    assert view.routes[R("10.0.2.0/24")].gateways == (A("172.31.0.1"),)
    assert view.unresolved == {R("10.0.3.0/24")}
    learned_routes[R("10.0.3.0/24")] = route("10.0.3.0/24", "172.31.0.3")
    del learned_routes[R("10.0.1.0/24")]
    view.update([(p, learned_routes.get(p)) for p in (R("10.0.3.0/24"), R("10.0.1.0/24"))], stale,
                resolver.resolve)
    fresh = DesiredRoutes()
    fresh.rebuild(learned_routes, stale, resolver.resolve)
    assert view.routes == fresh.routes and view.unresolved == fresh.unresolved == set()
    # a stale route stands in for a withdrawn learned one; an unresolvable next hop leaves the view
    del learned_routes[R("10.0.2.0/24")]
    learned_routes[R("10.0.4.0/24")] = route("10.0.4.0/24", "192.0.2.9")
    view.update([(R("10.0.2.0/24"), None), (R("10.0.4.0/24"), learned_routes[R("10.0.4.0/24")])], stale,
                resolver.resolve)
    fresh.rebuild(learned_routes, stale, resolver.resolve)
    assert view.routes == fresh.routes and view.unresolved == fresh.unresolved == {R("10.0.4.0/24")}


def test_resolution_looks_each_next_hop_set_up_once_and_keeps_unchanged_route_objects():
    lookup = Lookup()
    routes = {R(f"10.1.{i}.0/24"): route(f"10.1.{i}.0/24", "172.31.0.2") for i in range(100)}
    resolved, unresolved = NextHopResolver(lookup).resolve(routes)
    assert lookup.calls == 1 and not unresolved
    assert all(resolved[p] is r for p, r in routes.items())


# --- the Prefix type and the integer policy checks agree with the stdlib ------------------------------------
@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.sampled_from([4, 6]))
def test_prefixes_from_the_wire_equal_the_stdlib_reading(value, length, version):
    width = 32 if version == 4 else 128
    length = min(length, width)
    value &= (1 << width) - 1
    plain = ipaddress.ip_network((value, length), strict=False) if version == 4 else \
        ipaddress.IPv6Network((value, length), strict=False)
    octets = plain.network_address.packed[:(length + 7) // 8]
    decoded = Prefix.from_wire(version, bytes([length]) + octets)
    assert decoded == Prefix.from_network(plain) and decoded.to_network() == plain and str(decoded) == str(plain)


prefixes = st.one_of(
    st.builds(lambda a, n: ipaddress.IPv4Network((a, n), strict=False), st.integers(0, 2**32 - 1),
              st.integers(0, 32)),
    st.builds(lambda a, n: ipaddress.IPv6Network((a, n), strict=False), st.integers(0, 2**128 - 1),
              st.integers(0, 128)))


@given(prefix=prefixes, cluster=st.lists(prefixes, min_size=1, max_size=3), own=st.lists(prefixes, max_size=2),
       default=st.booleans())
def test_integer_policy_checks_agree_with_subnet_of_and_overlaps(prefix, cluster, own, default):
    policy = ImportPolicy(cluster_cidrs=tuple(cluster), own_cidrs=tuple(own), own_asn=64512,
                          accept_default_route=default)
    hop = A("172.31.0.2") if prefix.version == 4 else A("fd00::2")
    got = policy.reject_reason(LearnedRoute(P1, Prefix.from_network(prefix), hop, (65000,)))
    if prefix.prefixlen == 0 and default:
        expected = None
    elif not any(prefix.version == c.version and prefix.subnet_of(c) for c in cluster):
        expected = "outside-cluster-cidrs"
    elif any(prefix.version == c.version and prefix.overlaps(c) for c in own):
        expected = "own-pod-cidr"
    else:
        expected = None
    assert got == expected


# --- the raw RTM_GETROUTE lookup --------------------------------------------------------------------------------
def test_route_get_request_and_reply_round_trip():
    import struct

    from bgpnet.routes.messages import NLMSGHDR, RTATTR, RTM_NEWROUTE, RTMSG
    from bgpnet.routes.route_get import parse_route_get_reply, route_get_request

    request = route_get_request(7, A("10.1.2.3"))
    length, kind, _flags, seq, _pid = NLMSGHDR.unpack_from(request)
    assert (length, kind, seq) == (len(request), 26, 7) and request.endswith(A("10.1.2.3").packed)

    def reply(seq, rtype, attrs):
        body = RTMSG.pack(2, 32, 0, 0, 254, 2, 0, rtype, 0) + b"".join(
            RTATTR.pack(RTATTR.size + len(v), t) + v for t, v in attrs)
        return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_NEWROUTE, 0, seq, 0) + body

    answer = parse_route_get_reply(reply(7, 1, [(5, A("172.31.0.1").packed), (7, A("172.31.0.11").packed)]), 7)
    assert (answer.gateway, answer.source) == (A("172.31.0.1"), A("172.31.0.11"))
    assert parse_route_get_reply(reply(7, 1, [(7, A("172.31.0.11").packed)]), 7).gateway is None
    assert parse_route_get_reply(reply(7, 6, []), 7) is None  # blackhole/prohibit: not a unicast route
    unreachable = NLMSGHDR.pack(NLMSGHDR.size + 4, 2, 0, 7, 0) + struct.pack("=i", -errno.ENETUNREACH)
    assert parse_route_get_reply(unreachable, 7) is None
