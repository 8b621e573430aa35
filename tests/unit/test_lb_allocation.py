"""The pure LoadBalancer allocation: which addresses each Service should have, and why not."""

from __future__ import annotations

import ipaddress
import time

from bgpnet.config import LOAD_BALANCER_CLASS, LoadBalancerSettings
from bgpnet.lb_allocation import allocate
from bgpnet.lb_pools import parse_pools
from bgpnet.model import ServiceInfo


def _settings(*pools, default=False):
    return LoadBalancerSettings(default=default, pools=parse_pools("loadBalancerPools", list(pools)))


def _lb(name, namespace="default", *, cls=LOAD_BALANCER_CLASS, families=(4,), ingress=(), requested=(),
        labels=(), type="LoadBalancer"):
    return ServiceInfo(namespace=namespace, name=name, type=type, load_balancer_class=cls, ip_families=families,
                       ingress_ips=tuple(ipaddress.ip_address(i) for i in ingress), requested_ips=requested,
                       labels=tuple(sorted(labels)))


def _ips(allocation, key):
    return [str(i) for i in allocation.assigned[key]]


POOL = {"name": "main", "addresses": ["10.0.0.0/30", "fd00:1::/126"]}


def test_lowest_free_addresses_in_name_order_network_address_included():
    a = allocate(_settings(POOL), [_lb("b"), _lb("a"), _lb("c")])
    assert [_ips(a, f"default/{n}") for n in "abc"] == [["10.0.0.0"], ["10.0.0.1"], ["10.0.0.2"]]
    assert a.pending == {} and a.cleared == ()
    assert (a.pools["main"].in_use, a.pools["main"].capacity) == ({4: 3, 6: 0}, {4: 4, 6: 4})


def test_existing_assignments_are_kept_and_new_ones_fill_the_gaps():
    a = allocate(_settings(POOL), [_lb("a"), _lb("z", ingress=["10.0.0.0"]), _lb("y", ingress=["10.0.0.2"])])
    assert (_ips(a, "default/a"), _ips(a, "default/z"), _ips(a, "default/y")) == (
        ["10.0.0.1"], ["10.0.0.0"], ["10.0.0.2"])


def test_dual_stack_gets_one_per_family_primary_first():
    a = allocate(_settings(POOL), [_lb("ds", families=(6, 4)), _lb("v6", families=(6,))])
    assert _ips(a, "default/ds") == ["fd00:1::", "10.0.0.0"] and _ips(a, "default/v6") == ["fd00:1::1"]


def test_empty_ip_families_means_ipv4_or_the_requested_family():
    a = allocate(_settings(POOL), [_lb("plain", families=()), _lb("asks", families=(), requested=("fd00:1::3",))])
    assert _ips(a, "default/plain") == ["10.0.0.0"] and _ips(a, "default/asks") == ["fd00:1::3"]


def test_requested_address_honoured_when_free_and_in_an_eligible_pool():
    settings = _settings(POOL, {"name": "manual", "addresses": ["192.0.2.0/29"], "autoAssign": False},
                         {"name": "shop", "addresses": ["198.51.100.0/30"], "namespaces": ["shop"]})
    services = [
        _lb("a", requested=("10.0.0.2",)),
        _lb("b", requested=("10.0.0.2",)),  # already taken by a
        _lb("c", requested=("192.0.2.5",)),  # a pool without autoAssign: requests only
        _lb("d", requested=("203.0.113.1",)),  # in no pool
        _lb("e", requested=("198.51.100.1",)),  # a pool for another namespace
        _lb("f", requested=("banana",)),
        _lb("g", requested=("fd00:1::1",)),  # an IPv6 address for an IPv4-only Service
        _lb("h", ingress=["10.0.0.3"]),
        _lb("i", requested=("10.0.0.3",)),
    ]
    a = allocate(settings, services)
    assert _ips(a, "default/a") == ["10.0.0.2"] and _ips(a, "default/c") == ["192.0.2.5"]
    assert a.pending["default/b"] == ("requested address 10.0.0.2 is already used by default/a",)
    assert a.pending["default/d"] == ("requested address 203.0.113.1 is in no pool",)
    assert "pool 'shop', which does not serve this Service" in a.pending["default/e"][0]
    assert a.pending["default/f"] == ("requested address 'banana' is not an IP address",)
    assert a.pending["default/g"] == ("requested address fd00:1::1 is IPv6, not one of the Service's ipFamilies "
                                      "(IPv4)",)
    for key in ("default/b", "default/d", "default/e", "default/f", "default/g"):
        assert a.assigned[key] == (), key  # nothing auto-assigned in place of what was asked for
    # An address in a Service's status is kept: a request for it waits, whatever the names' order.
    assert _ips(a, "default/h") == ["10.0.0.3"]
    assert a.pending["default/i"] == ("requested address 10.0.0.3 is already used by default/h",)


def test_a_changed_request_moves_the_service():
    a = allocate(_settings(POOL), [_lb("a", ingress=["10.0.0.0"], requested=("10.0.0.2",))])
    assert _ips(a, "default/a") == ["10.0.0.2"] and a.pools["main"].in_use[4] == 1


def test_exhaustion_leaves_later_services_pending_with_a_reason():
    a = allocate(_settings(POOL), [_lb(f"s{i}") for i in range(6)])
    assert sorted(str(ip) for k in a.assigned for ip in a.assigned[k]) == [f"10.0.0.{i}" for i in range(4)]
    assert a.pending == {f"default/s{i}": ("no free IPv4 address: pools 'main' are exhausted",) for i in (4, 5)}
    assert a.assigned["default/s5"] == ()


def test_partial_dual_stack_when_one_family_is_exhausted():
    a = allocate(_settings({"name": "v4", "addresses": ["10.0.0.0/32"]}), [_lb("ds", families=(4, 6))])
    assert _ips(a, "default/ds") == ["10.0.0.0"]
    assert a.pending["default/ds"] == ("no pool with autoAssign and IPv6 addresses serves this Service",)


def test_selectors_choose_the_first_eligible_pool_and_auto_assign_false_is_skipped():
    settings = _settings(
        {"name": "manual", "addresses": ["192.0.2.0/30"], "autoAssign": False},
        {"name": "public", "addresses": ["198.51.100.0/30"], "serviceSelector": {"matchLabels": {"x": "public"}}},
        {"name": "shop", "addresses": ["203.0.113.0/30"], "namespaces": ["shop"]},
        {"name": "rest", "addresses": ["10.0.0.0/30"]})
    a = allocate(settings, [_lb("pub", labels=[("x", "public")]), _lb("web", "shop"), _lb("other"),
                            _lb("pubshop", "shop", labels=[("x", "public")])])
    assert _ips(a, "default/pub") == ["198.51.100.0"] and _ips(a, "shop/web") == ["203.0.113.0"]
    assert _ips(a, "default/other") == ["10.0.0.0"] and _ips(a, "shop/pubshop") == ["198.51.100.1"]


def test_an_address_from_a_pool_that_no_longer_serves_the_service_is_replaced():
    settings = _settings({"name": "shop", "addresses": ["203.0.113.0/30"], "namespaces": ["shop"]}, POOL)
    a = allocate(settings, [_lb("a", ingress=["203.0.113.2"]), _lb("b", ingress=["192.0.2.1"])])
    assert _ips(a, "default/a") == ["10.0.0.0"] and _ips(a, "default/b") == ["10.0.0.1"]


def test_only_served_services_hold_addresses_deleted_and_type_changed_ones_free_theirs():
    settings = _settings(POOL)
    before = allocate(settings, [_lb("a"), _lb("b"), _lb("c")])
    assert _ips(before, "default/b") == ["10.0.0.1"]
    after = [
        _lb("a", ingress=["10.0.0.0"]),
        # b deleted; c became a ClusterIP Service but its old ingress is still shown: freed and to be cleared
        _lb("c", ingress=["10.0.0.2"], type="ClusterIP", cls=None),
        _lb("other", cls="example.com/lb", ingress=["10.0.0.3"]),  # another implementation's: not ours to judge
        _lb("unclassed", cls=None),  # bgpnet is not the default implementation
        _lb("new1"), _lb("new2"),
    ]
    a = allocate(settings, after)
    assert set(a.assigned) == {"default/a", "default/new1", "default/new2"}
    assert (_ips(a, "default/new1"), _ips(a, "default/new2")) == (["10.0.0.1"], ["10.0.0.2"])
    assert a.cleared == ("default/c",)
    assert _ips(allocate(_settings(POOL, default=True), after), "default/unclassed") == ["10.0.0.3"]


def test_a_conflict_in_status_is_won_by_the_first_service_in_name_order():
    services = [_lb("b", ingress=["10.0.0.1"]), _lb("a", ingress=["10.0.0.1"])]
    a = allocate(_settings(POOL), services)
    assert _ips(a, "default/a") == ["10.0.0.1"] and _ips(a, "default/b") == ["10.0.0.0"]
    assert allocate(_settings(POOL), list(reversed(services))).assigned == a.assigned


def test_500_services_get_500_distinct_addresses_quickly_from_a_16():
    settings = _settings({"name": "big", "addresses": ["10.1.0.0/16"]})
    services = [_lb(f"s{i:04d}", f"ns{i % 7}") for i in range(500)]
    a = allocate(settings, services)
    addresses = [ip for k in a.assigned for ip in a.assigned[k]]
    assert len(addresses) == len(set(addresses)) == 500 and a.pending == {}
    # 5,000 Services, half of them already assigned, in a /16: well under a second.
    big = [_lb(f"s{i:04d}", ingress=[f"10.1.{i // 256}.{i % 256}"] if i % 2 else []) for i in range(5000)]
    started = time.perf_counter()
    b = allocate(settings, big)
    elapsed = time.perf_counter() - started
    assert len({ip for k in b.assigned for ip in b.assigned[k]}) == 5000 and elapsed < 1.0, elapsed
    assert b.pools["big"].in_use[4] == 5000 and b.pools["big"].capacity[4] == 65536
