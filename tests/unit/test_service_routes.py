"""Which Service addresses a node announces (bgpnet.service_routes): the pure decision per Service and the
incremental table that keeps it."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest

from bgpnet.config import parse_config
from bgpnet.model import Announcement, NodeInfo, ServiceInfo
from bgpnet.service_routes import (
    CLUSTER_IP,
    EXTERNAL_IP,
    LOAD_BALANCER,
    OUTSIDE_EXTERNAL_CIDRS,
    OUTSIDE_LOAD_BALANCER_CIDRS,
    ServiceTable,
    decide,
)

CFG = parse_config({
    "asn": 64512, "clusterCIDRs": ["10.244.0.0/16"],
    "serviceClusterIPs": ["10.96.0.0/16", "fd00:96::/112"], "serviceExternalIPs": ["192.0.2.0/24"],
    "serviceLoadBalancerIPs": ["198.51.100.0/24", "2001:db8:1b::/120"], "serviceCommunities": ["64512:300"]})
ME = NodeInfo("n1", (A("172.20.0.1"),), (N("10.244.1.0/24"),))
EXCLUDED = NodeInfo("n1", (A("172.20.0.1"),), (N("10.244.1.0/24"),),
                    labels=(("node.kubernetes.io/exclude-from-external-load-balancers", ""),))


def lb(name="web", *, local=False, ips=("198.51.100.7",), cls="bgpnet.io/bgp", **kw):
    return ServiceInfo("default", name, "LoadBalancer", cluster_ips=(A("10.96.0.10"),),
                       ingress_ips=tuple(map(A, ips)), external_local=local, load_balancer_class=cls, **kw)


def prefixes(decision):
    return {(str(a.prefix), a.kind) for a in decision.addresses}


def test_cluster_policy_load_balancer_is_announced_from_every_node_endpoint_or_not():
    assert prefixes(decide(CFG, ME, lb(), local_ready=False)) == {("198.51.100.7/32", LOAD_BALANCER)}


def test_local_policy_needs_a_ready_local_endpoint_and_then_also_announces_the_cluster_ip():
    assert prefixes(decide(CFG, ME, lb(local=True), local_ready=False)) == set()
    assert prefixes(decide(CFG, ME, lb(local=True), local_ready=True)) == {
        ("198.51.100.7/32", LOAD_BALANCER), ("10.96.0.10/32", CLUSTER_IP)}


def test_internal_traffic_policy_local_announces_the_cluster_ip_from_endpoint_nodes_only():
    svc = ServiceInfo("default", "db", cluster_ips=(A("10.96.0.20"), A("fd00:96::20")), internal_local=True)
    assert prefixes(decide(CFG, ME, svc, local_ready=False)) == set()
    assert prefixes(decide(CFG, ME, svc, local_ready=True)) == {("10.96.0.20/32", CLUSTER_IP),
                                                                ("fd00:96::20/128", CLUSTER_IP)}


def test_a_cluster_ip_outside_service_cluster_ips_is_never_announced():
    svc = ServiceInfo("default", "db", cluster_ips=(A("10.97.0.20"),), internal_local=True)
    assert prefixes(decide(CFG, ME, svc, local_ready=True)) == set()


def test_external_ips_outside_the_allowed_cidrs_are_ignored_and_reported():
    svc = ServiceInfo("t", "x", external_ips=(A("192.0.2.5"), A("8.8.8.8")))
    decision = decide(CFG, ME, svc, local_ready=False)
    assert prefixes(decision) == {("192.0.2.5/32", EXTERNAL_IP)}
    assert decision.ignored == ((OUTSIDE_EXTERNAL_CIDRS, "8.8.8.8"),)


def test_excluded_node_announces_no_external_or_load_balancer_address_but_keeps_cluster_ips():
    svc = lb(local=True, external_ips=(A("192.0.2.5"),))
    assert prefixes(decide(CFG, EXCLUDED, svc, local_ready=True)) == {("10.96.0.10/32", CLUSTER_IP)}


@pytest.mark.parametrize("cls,default,announced", [
    ("bgpnet.io/bgp", False, True), (None, False, False), (None, True, True), ("other.io/lb", True, False)])
def test_only_load_balancers_bgpnet_serves_are_announced(cls, default, announced):
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"],
                        "serviceLoadBalancerIPs": ["198.51.100.0/24"], "defaultLoadBalancer": default})
    assert bool(decide(cfg, ME, lb(cls=cls), local_ready=True).addresses) is announced


def test_ingress_outside_service_load_balancer_ips_is_ignored():
    decision = decide(CFG, ME, lb(ips=("203.0.113.9", "2001:db8:1b::5")), local_ready=False)
    assert prefixes(decision) == {("2001:db8:1b::5/128", LOAD_BALANCER)}
    assert decision.ignored == ((OUTSIDE_LOAD_BALANCER_CIDRS, "203.0.113.9"),)


def test_communities_global_plus_the_service_annotation_bad_annotation_reported():
    svc = lb(annotations=(("bgpnet.io/communities", "64512:7"), ("bgpnet.io/large-communities", "bogus")))
    decision = decide(CFG, ME, svc, local_ready=False)
    (address,) = decision.addresses
    assert (address.communities, address.large_communities) == (("64512:300", "64512:7"), ())
    assert decision.ignored == (("bad-communities-annotation", "bgpnet.io/large-communities"),)


def test_nothing_is_announced_with_the_defaults():
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]})
    svc = lb(local=True, external_ips=(A("192.0.2.5"),))
    assert not cfg.services.enabled
    assert decide(cfg, ME, svc, local_ready=True).addresses == ()


def announced(table):
    return {str(a.prefix) for a in table.announcements()}


def test_table_announces_service_cidrs_and_only_redecides_changed_services():
    table = ServiceTable()
    services = {f"default/s{i}": lb(f"s{i}", local=True, ips=(f"198.51.100.{i}",)) for i in range(1, 51)}
    assert table.update(CFG, ME, services, {})
    assert announced(table) == {"10.96.0.0/16", "fd00:96::/112"}  # Local, no endpoints yet
    assert all(not a.to_mesh for a in table.announcements())
    before = table.decisions_made
    assert table.update(CFG, ME, {}, {"default/s7": True})
    assert table.decisions_made == before + 1
    assert announced(table) == {"10.96.0.0/16", "fd00:96::/112", "198.51.100.7/32", "10.96.0.10/32"}
    assert table.update(CFG, ME, {}, {"default/s7": False})
    assert announced(table) == {"10.96.0.0/16", "fd00:96::/112"}
    assert not table.update(CFG, ME, {}, {})  # nothing changed: no work, same set


def test_a_prefix_shared_by_two_services_stays_until_both_are_gone_with_merged_communities():
    table = ServiceTable()
    a = ServiceInfo("t", "a", external_ips=(A("192.0.2.5"),), annotations=(("bgpnet.io/communities", "64512:1"),))
    b = ServiceInfo("t", "b", external_ips=(A("192.0.2.5"),), annotations=(("bgpnet.io/communities", "64512:2"),))
    table.update(CFG, ME, {a.key: a, b.key: b}, {})
    shared = next(x for x in table.announcements() if str(x.prefix) == "192.0.2.5/32")
    assert shared == Announcement(N("192.0.2.5/32"), ("64512:1", "64512:2", "64512:300"), (), to_mesh=False)
    table.update(CFG, ME, {a.key: None}, {})
    assert "192.0.2.5/32" in announced(table)
    table.update(CFG, ME, {b.key: None}, {})
    assert "192.0.2.5/32" not in announced(table)


def test_own_node_gaining_the_exclusion_label_withdraws_external_addresses():
    table = ServiceTable()
    table.update(CFG, ME, {"default/web": lb()}, {})
    assert "198.51.100.7/32" in announced(table)
    assert table.update(CFG, EXCLUDED, {}, {})
    assert "198.51.100.7/32" not in announced(table)
    assert table.update(CFG, None, {}, {})
    assert announced(table) == set()  # our own Node unknown: nothing at all
