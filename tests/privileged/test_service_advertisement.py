"""Service addresses at a real BIRD2 ToR: four nodes (eBGP, AS per node) announce LoadBalancer, external and
ClusterIP addresses from exactly the nodes the Service's policy and endpoints allow — real agents, ExaBGP,
BIRD's table and its kernel routes. The Services and EndpointSlices are written to the API stand-in as a
cluster's controllers would (bgpnet.lab.services)."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.services import LabServices
from tests.privileged.faults_support import agent_status
from tests.privileged.tor_topology import CLUSTER_CIDRS, Router, TorLab, bird_common, bird_neighbor, link_addresses
from tests.privileged.tor_topology import wait_for as _wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

CONFIG = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
          "startupGracePeriod": 5, "serviceClusterIPs": ["10.96.0.0/16"], "serviceExternalIPs": ["192.0.2.0/24"],
          "serviceLoadBalancerIPs": ["198.51.100.0/24"], "serviceCommunities": ["64512:300"]}
EXCLUDE = "node.kubernetes.io/exclude-from-external-load-balancers"
LB_IP = "198.51.100.7"


@pytest.fixture
def lab_group():
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    group = NetnsGroup()
    try:
        yield group
    finally:
        group.close()


def wait_for(predicate, timeout, what):
    _wait_for(predicate, timeout, interval=0.02, what=what)


def tor_next_hops(tor: Router, prefix: str) -> set[str]:
    """The next hops of the ToR's kernel route for `prefix` (BIRD exports its ECMP routes as multipath)."""
    out = tor.ns.run("ip", "route", "show", "exact", prefix, check=False).stdout
    return set(re.findall(r"via (\S+)", out))


def node_address(index: int) -> str:
    return link_addresses(index, 0)[1]


def hops(*indexes: int) -> set[str]:
    return {node_address(i) for i in indexes}


@pytest.fixture
def fabric(lab_group, tmp_path):
    """One ToR (AS 65100), nodes 1-4 (AS 6500n, IPv4 sessions); node4 carries the exclusion label."""
    lab = TorLab(lab_group, tmp_path, CONFIG)
    tor = lab.add_router("tor", 1)
    sessions = "".join(bird_neighbor(f"n{i}", 65100, node_address(i), 65000 + i) for i in (1, 2, 3, 4))
    lab.start_bird(tor, bird_common(tor) + sessions)
    for i in (1, 2, 3, 4):
        labels = {"bgpnet.io/asn": str(65000 + i), **({EXCLUDE: ""} if i == 4 else {})}
        lab.add_node(i, [tor], labels=labels, metrics=i == 1, annotations={"bgpnet.io/peers": json.dumps(
            [{"address": link_addresses(i, 0)[0], "asn": 65100}])})

    def pods_announced():
        lab.check_agents()
        return all(tor_next_hops(tor, f"10.244.{i}.0/24") == hops(i) for i in (1, 2, 3, 4))
    wait_for(pods_announced, 60, "every node's pod CIDR at the ToR")
    services = LabServices(lab.api.api_client, lab.call)
    return lab, tor, services


def timed(predicate, timeout, what) -> float:
    started = time.monotonic()
    wait_for(predicate, timeout, what)
    return time.monotonic() - started


def pod_routes_intact(tor: Router) -> bool:
    return all(tor_next_hops(tor, f"10.244.{i}.0/24") == hops(i) for i in (1, 2, 3, 4))


def test_local_load_balancer_follows_its_endpoints_and_cluster_services_come_from_every_eligible_node(fabric):
    lab, tor, services = fabric
    timings = {}
    # The Service CIDR, from every node (the exclusion label is about external traffic only).
    wait_for(lambda: tor_next_hops(tor, "10.96.0.0/16") == hops(1, 2, 3, 4), 30, "the Service CIDR from all nodes")

    # externalTrafficPolicy: Local with endpoints on node1 and node2 -> exactly those next hops.
    services.create("web", {"node1": ["10.244.1.10"], "node2": ["10.244.2.10"]}, local=True,
                    annotations={"bgpnet.io/communities": "64512:7"})
    services.set_ingress("web", LB_IP)
    timings["announce"] = timed(lambda: tor_next_hops(tor, f"{LB_IP}/32") == hops(1, 2), 30,
                                "the LoadBalancer address from node1 and node2")
    at_tor = tor.birdc("show", "route", "for", f"{LB_IP}/32", "all")
    assert "BGP.community: (64512,7) (64512,300)" in at_tor, at_tor
    # The ClusterIP of a Local Service: its /32 from the endpoint nodes too (Calico's behaviour).
    cluster_ip = lab.call(services.core.read_namespaced_service, "web", "default").spec.cluster_ip
    wait_for(lambda: tor_next_hops(tor, f"{cluster_ip}/32") == hops(1, 2), 30, "the Local Service's ClusterIP")

    # The endpoint on node2 moves to node3.
    services.set_endpoints("web", {"node1": ["10.244.1.10"], "node3": ["10.244.3.10"]})
    timings["move"] = timed(lambda: tor_next_hops(tor, f"{LB_IP}/32") == hops(1, 3), 30, "the next hop moved")

    # A terminating endpoint no longer counts: node3's pod is shutting down.
    services.set_endpoints("web", {"node1": ["10.244.1.10"], "node3": ["10.244.3.10"]}, terminating=["node3"])
    timings["terminating"] = timed(lambda: tor_next_hops(tor, f"{LB_IP}/32") == hops(1), 30,
                                   "node3 withdrew for its terminating endpoint")

    # Scaled to zero: withdrawn everywhere, ClusterIP /32 too; the Service CIDR stays.
    services.set_endpoints("web", {})
    timings["withdraw"] = timed(lambda: not tor_next_hops(tor, f"{LB_IP}/32"), 30, "the address withdrawn")
    wait_for(lambda: not tor_next_hops(tor, f"{cluster_ip}/32"), 30, "the ClusterIP /32 withdrawn")
    assert tor_next_hops(tor, "10.96.0.0/16") == hops(1, 2, 3, 4)

    # externalTrafficPolicy: Cluster -> every node but the excluded one; an external IP outside
    # serviceExternalIPs is never announced.
    services.create("ext", {"node1": ["10.244.1.11"]}, load_balancer=False, local=False,
                    external_ips=["192.0.2.10", "203.0.113.66"])
    wait_for(lambda: tor_next_hops(tor, "192.0.2.10/32") == hops(1, 2, 3), 30, "the external IP from nodes 1-3")
    assert "203.0.113.66" not in tor.birdc("show", "route"), tor.birdc("show", "route")
    services_status = agent_status(lab.nodes["node1"])["services"]
    assert services_status["ignored"] == {"external-ip-not-allowed": 1}, services_status
    assert {"prefix": "192.0.2.10/32", "kind": "external-ip", "service": "default/ext"} in services_status["addresses"]

    # Deleting the Service withdraws its addresses from every node.
    services.delete("ext")
    wait_for(lambda: not tor_next_hops(tor, "192.0.2.10/32"), 30, "the deleted Service's external IP withdrawn")

    # The pod CIDRs were never disturbed.
    assert pod_routes_intact(tor)
    lab.check_agents()
    print("\nService route changes at the ToR (s):", {k: round(v, 3) for k, v in timings.items()})
