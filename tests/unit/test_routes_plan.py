"""plan_changes: the pure diff between desired routes and what is installed."""

from __future__ import annotations

import ipaddress

from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.plan import index_by_prefix, plan_changes

ip, net = ipaddress.ip_address, Prefix.parse


def route(prefix: str, *gateways: str) -> KernelRoute:
    return KernelRoute(net(prefix), tuple(ip(g) for g in gateways))


def test_diff_table():
    installed = index_by_prefix([route("10.0.1.0/24", "172.31.0.2"), route("10.0.2.0/24", "172.31.0.2"),
                                 route("fd00:3::/64", "fd00::2"), route("10.0.4.0/24", "172.31.0.2")])
    desired = index_by_prefix([
        route("10.0.1.0/24", "172.31.0.2"),                 # same: untouched
        route("10.0.2.0/24", "172.31.0.3", "172.31.0.2"),   # ECMP grow: replace
        route("fd00:3::/64", "fd00::3"),                    # IPv6 gateway change: replace
        route("10.0.5.0/24", "172.31.0.2"),                 # new: add
        KernelRoute(net("10.0.6.0/24")),                    # no gateway: invalid
    ])                                                      # 10.0.4.0/24 gone: delete
    plan = plan_changes(desired, installed)
    assert [str(r.prefix) for r in plan.add] == ["10.0.5.0/24"]
    assert [str(r.prefix) for r in plan.replace] == ["10.0.2.0/24", "fd00:3::/64"]
    assert [str(p) for p in plan.delete] == ["10.0.4.0/24"]
    assert [str(r.prefix) for r in plan.invalid] == ["10.0.6.0/24"]


def test_empty_installed_adds_all_and_empty_desired_deletes_all():
    routes = index_by_prefix([route("10.0.1.0/24", "172.31.0.2"), route("fd00::/64", "fd00::2")])
    assert plan_changes(routes, {}).add == list(routes.values())
    assert plan_changes({}, routes).delete == list(routes)


def test_gateway_order_does_not_matter_and_later_duplicate_wins():
    a = route("10.0.1.0/24", "172.31.0.3", "172.31.0.2")
    b = route("10.0.1.0/24", "172.31.0.2", "172.31.0.3")
    assert plan_changes(index_by_prefix([b]), index_by_prefix([a])).replace == []
    c = route("10.0.1.0/24", "172.31.0.9")
    assert index_by_prefix([a, c]) == {c.prefix: c}


def test_invalid_routes_count_right_when_deciding_whether_to_look_for_deletes():
    same, gone = route("10.0.1.0/24", "172.31.0.2"), route("10.0.3.0/24", "172.31.0.2")
    # An invalid route the kernel does not hold: the stale 10.0.3.0/24 must still be found and deleted.
    plan = plan_changes(index_by_prefix([same, KernelRoute(net("10.0.2.0/24"))]), index_by_prefix([same, gone]))
    assert plan.delete == [gone.prefix] and [r.prefix for r in plan.invalid] == [net("10.0.2.0/24")]
    # An invalid route for a prefix the kernel holds: reported, and the installed route is not deleted.
    held = route("10.0.2.0/24", "172.31.0.2")
    plan = plan_changes(index_by_prefix([same, KernelRoute(net("10.0.2.0/24"))]), index_by_prefix([same, held]))
    assert plan.delete == [] and [r.prefix for r in plan.invalid] == [net("10.0.2.0/24")]
