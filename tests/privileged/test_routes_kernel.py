"""RouteTable against the real kernel, in a fresh network namespace with a veth to a peer namespace (so the
gateways are on a connected network). What `ip route` shows is the judge, plus foreign routes that must
come out of every scenario byte-for-byte unchanged."""

from __future__ import annotations

import errno
import ipaddress
import json

import pytest

from bgpnet.lab.netns import entered
from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes import CONFLICT, RouteTable
from bgpnet.routes.netlink import SocketRouteNetlink

pytestmark = pytest.mark.privileged

ip, net = ipaddress.ip_address, Prefix.parse


def route(prefix: str, *gateways: str) -> KernelRoute:
    return KernelRoute(net(prefix), tuple(ip(g) for g in gateways))


@pytest.fixture
def node(netns_group):
    """Namespace "node" with eth0 172.31.0.1/24 + fd00:ff::1/64, veth to namespace "peer"."""
    node, peer = netns_group.add("node"), netns_group.add("peer")
    netns_group.veth(node, "eth0", peer, "eth0")
    node.run("ip", "addr", "add", "172.31.0.1/24", "dev", "eth0")
    node.run("ip", "-6", "addr", "add", "fd00:ff::1/64", "dev", "eth0", "nodad")
    peer.run("ip", "addr", "add", "172.31.0.2/24", "dev", "eth0")
    return node


@pytest.fixture
def table(node):
    with entered(node.path):
        netlink = SocketRouteNetlink()
    table = RouteTable(netlink)
    yield table
    table.close()


def kernel_routes(ns, *selector: str) -> dict:
    """{prefix: sorted gateways} of IPv4 and IPv6 main-table routes matching the selector, per `ip -j`."""
    found = {}
    for family in ("-4", "-6"):
        for entry in json.loads(ns.run("ip", "-j", family, "route", "show", "table", "main", *selector).stdout):
            hops = entry.get("nexthops") or [entry]
            gateways = sorted((ip(h["gateway"]) for h in hops if "gateway" in h), key=lambda a: a.packed)
            prefix = net("0.0.0.0/0" if entry["dst"] == "default" else entry["dst"])
            found[prefix] = tuple(gateways)
    return found


def ours(ns) -> dict:
    return kernel_routes(ns, "proto", "179")


def as_kernel(routes) -> dict:
    return {r.prefix: r.gateways for r in routes}


def many(n: int) -> list[KernelRoute]:
    base = int(ip("10.128.0.0"))
    gateways = (ip("172.31.0.2"),), (ip("172.31.0.3"),), (ip("172.31.0.2"), ip("172.31.0.3"))
    return [KernelRoute(Prefix(4, base + (i << 6), 26), gateways[i % 3]) for i in range(n)]


@pytest.mark.parametrize("n", [1, 1000, 20000])
def test_apply_installs_exactly_the_desired_routes_and_withdraws_them(node, table, n):
    desired = many(n)
    result = table.apply(desired)
    assert (result.added, result.errors) == (n, ())
    assert ours(node) == as_kernel(desired)
    dumped = {r.prefix: r for r, _ in table._netlink.dump(proto=179, table=254)}
    assert dumped == {r.prefix: r for r in desired} == dict(table.installed())
    assert table.apply(desired).added == 0
    result = table.apply([])
    assert (result.removed, result.errors) == (n, ())
    assert ours(node) == {}


def test_foreign_routes_are_never_touched(node, table):
    node.run("ip", "route", "add", "10.1.0.0/24", "via", "172.31.0.2", "proto", "static")  # same prefix
    node.run("ip", "route", "add", "10.2.0.0/24", "via", "172.31.0.2")                     # same, proto boot
    node.run("ip", "route", "add", "10.3.0.0/24", "via", "172.31.0.2", "proto", "static")  # other prefix
    node.run("ip", "route", "add", "10.4.0.0/24", "via", "172.31.0.2", "proto", "boot")    # other prefix
    node.run("ip", "route", "add", "10.5.0.0/24", "via", "172.31.0.2", "metric", "100")   # same prefix, metric
    node.run("ip", "-6", "route", "add", "fd00:1::/64", "via", "fd00:ff::2", "proto", "static")  # same prefix
    foreign_before = node.run("ip", "-d", "route", "show", "table", "all").stdout
    foreign_before6 = node.run("ip", "-6", "-d", "route", "show", "table", "all").stdout

    desired = [route("10.1.0.0/24", "172.31.0.3"), route("10.2.0.0/24", "172.31.0.3"),
               route("10.5.0.0/24", "172.31.0.3"), route("10.6.0.0/24", "172.31.0.3"),
               route("fd00:1::/64", "fd00:ff::3")]
    result = table.apply(desired)
    conflicts = sorted(str(e.prefix) for e in result.errors if e.reason == CONFLICT)
    assert conflicts == ["10.1.0.0/24", "10.2.0.0/24", "fd00:1::/64"]
    assert result.added == 2  # 10.5/24 at metric 0 beside the foreign metric-100 one, and 10.6/24
    assert ours(node) == as_kernel(desired[2:4])
    assert kernel_routes(node, "proto", "static")[net("10.1.0.0/24")] == (ip("172.31.0.2"),)
    assert kernel_routes(node, "proto", "boot")[net("10.2.0.0/24")] == (ip("172.31.0.2"),)

    assert [e.reason for e in table.resync(desired).errors] == [CONFLICT] * 3
    result = table.apply([])
    assert (result.removed, result.errors) == (2, ())
    assert ours(node) == {}
    assert node.run("ip", "-d", "route", "show", "table", "all").stdout == foreign_before
    assert node.run("ip", "-6", "-d", "route", "show", "table", "all").stdout == foreign_before6


def test_ecmp_route_is_multipath_and_shrinks_to_one_nexthop(node, table):
    wide = [route("10.7.0.0/24", "172.31.0.2", "172.31.0.3"), route("fd00:7::/64", "fd00:ff::2", "fd00:ff::3")]
    assert table.apply(wide).added == 2
    shown = node.run("ip", "route", "show", "10.7.0.0/24").stdout
    assert "nexthop via 172.31.0.2" in shown and "nexthop via 172.31.0.3" in shown
    assert ours(node) == as_kernel(wide)
    narrow = [route("10.7.0.0/24", "172.31.0.3"), route("fd00:7::/64", "fd00:ff::2")]
    result = table.apply(narrow)
    assert (result.replaced, result.errors) == (2, ())
    assert ours(node) == as_kernel(narrow)
    assert "nexthop" not in node.run("ip", "route", "show", "10.7.0.0/24").stdout
    assert table.apply(wide).replaced == 2
    assert ours(node) == as_kernel(wide)


def test_ipv6_routes_add_replace_delete(node, table):
    v6 = [route(f"fd00:{i:x}::/64", "fd00:ff::2") for i in range(1, 200)] + [route("fd01::/48", "fd00:ff::3")]
    assert table.apply(v6).added == 200
    assert ours(node) == as_kernel(v6)
    changed = [route(f"fd00:{i:x}::/64", "fd00:ff::3") for i in range(1, 100)]
    result = table.apply(changed)
    assert (result.replaced, result.removed, result.errors) == (99, 101, ())
    assert ours(node) == as_kernel(changed)


def test_unreachable_gateway_is_reported_for_that_route_only(node, table):
    desired = [route("10.8.0.0/24", "172.31.0.2"), route("10.8.1.0/24", "192.0.2.1"),
               route("fd00:8::/64", "fd00:ff::2"), route("10.8.2.0/24", "172.31.0.3")]
    result = table.apply(desired)
    assert [(str(e.prefix), e.errno) for e in result.errors] == [("10.8.1.0/24", errno.ENETUNREACH)]
    assert ours(node) == as_kernel([desired[0], desired[2], desired[3]])
    assert net("10.8.1.0/24") not in table.installed()


def test_resync_heals_drift_and_removes_extra_routes_of_ours(node, table):
    desired = [route("10.9.0.0/24", "172.31.0.2"), route("10.9.1.0/24", "172.31.0.2"),
               route("fd00:9::/64", "fd00:ff::2", "fd00:ff::3"), route("10.9.2.0/24", "172.31.0.2")]
    table.apply(desired)
    node.run("ip", "route", "del", "10.9.0.0/24")
    node.run("ip", "route", "replace", "10.9.1.0/24", "via", "172.31.0.3", "proto", "179")
    node.run("ip", "-6", "route", "del", "fd00:9::/64", "via", "fd00:ff::3")
    node.run("ip", "route", "add", "10.9.3.0/24", "via", "172.31.0.2", "proto", "179")
    node.run("ip", "route", "add", "10.9.2.0/24", "via", "172.31.0.3", "proto", "179", "metric", "30")
    result = table.resync(desired)
    assert (result.added, result.replaced, result.removed, result.errors) == (1, 2, 2, ())
    assert ours(node) == as_kernel(desired)
    assert "metric 30" not in node.run("ip", "route", "show", "proto", "179").stdout


def test_a_restarted_table_adopts_the_previous_runs_routes_without_touching_them(node, table):
    desired = many(300)
    table.apply(desired)
    with entered(node.path):
        restarted = RouteTable(SocketRouteNetlink())
    try:
        result = restarted.resync(desired[:200])
        assert (result.added, result.replaced, result.removed, result.errors) == (0, 0, 100, ())
        assert ours(node) == as_kernel(desired[:200])
    finally:
        restarted.close()


def test_ack_per_message_mode_reports_the_same(node):
    with entered(node.path):
        table = RouteTable(SocketRouteNetlink(ack_each=True, chunk=64))
    try:
        desired = [*many(500), route("10.10.0.0/24", "192.0.2.1")]
        result = table.apply(desired)
        assert result.added == 500
        assert [str(e.prefix) for e in result.errors] == ["10.10.0.0/24"]
        assert ours(node) == as_kernel(desired[:500])
    finally:
        table.close()


def test_thousands_of_failures_in_one_batch_are_all_reported(node, table):
    base = int(ip("10.64.0.0"))
    doomed = [KernelRoute(Prefix(4, base + (i << 8), 24), (ip("192.0.2.1"),)) for i in range(9000)]
    fine = route("10.11.0.0/24", "172.31.0.2")
    result = table.apply([*doomed, fine])
    assert result.added == 1
    assert len(result.errors) == 9000
    assert {e.reason for e in result.errors} == {"ENETUNREACH"}
    assert {e.prefix for e in result.errors} == {r.prefix for r in doomed}
    assert ours(node) == as_kernel([fine])
