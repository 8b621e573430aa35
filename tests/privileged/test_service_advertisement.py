"""Service addresses at a real BIRD2 ToR: four nodes (eBGP, AS per node) announce LoadBalancer, external and
ClusterIP addresses from exactly the nodes the Service's policy and endpoints allow — real agents, ExaBGP,
BIRD's table and its kernel routes. The Services and EndpointSlices are written to the API stand-in as a
cluster's controllers would (bgpnet.lab.services)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import time

import pytest

from bgpnet.lab.processes import descendants
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


# 500 addresses for the allocator test (100.64.0.0-100.64.1.243); the 501st Service finds the pool exhausted.
POOLS = {"serviceLoadBalancerIPs": ["198.51.100.0/24", "100.64.0.0/22"],
         "loadBalancerPools": [{"name": "bulk", "addresses": ["100.64.0.0-100.64.1.243"]}]}


@pytest.fixture
def fabric(request, lab_group, tmp_path):
    """One ToR (AS 65100), nodes 1-4 (AS 6500n, IPv4 sessions); node4 carries the exclusion label."""
    lab = TorLab(lab_group, tmp_path, {**CONFIG, **getattr(request, "param", {})})
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
    assert at_tor.count("BGP.community: (64512,300) (64512,7)") == 2, at_tor  # from both nodes
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


def lease_holder(lab: TorLab) -> str | None:
    import kubernetes

    coordination = kubernetes.client.CoordinationV1Api(lab.api.api_client)
    try:
        lease = lab.call(coordination.read_namespaced_lease, "bgpnet-lb-allocator", "bgpnet-system")
    except kubernetes.client.ApiException:
        return None
    return lease.spec.holder_identity or None


def all_ingress(lab: TorLab, services: LabServices) -> dict[str, list[str]]:
    listed = lab.call(services.core.list_namespaced_service, "default")
    return {s.metadata.name: [i.ip for i in (s.status.load_balancer.ingress or [])] if s.status.load_balancer else []
            for s in listed.items if s.spec.type == "LoadBalancer"}


def crash(lab: TorLab, node) -> None:
    """SIGKILL the agent and everything it started (ExaBGP, its helper, the BFD process): a node dying."""
    pids = [node.agent.pid, *descendants(node.agent.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.agent.wait(timeout=20)
    node.agent = None


@pytest.mark.parametrize("fabric", [POOLS], indirect=True)
def test_five_hundred_load_balancers_get_distinct_addresses_and_a_failover_gives_none_twice(fabric):
    lab, tor, services = fabric
    wait_for(lambda: lease_holder(lab) is not None, 30, "an allocator leader")
    leader = lease_holder(lab)
    started = time.monotonic()
    for i in range(500):
        lab.call(services.core.create_namespaced_service, "default", {
            "metadata": {"name": f"lb{i:03d}"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "bgpnet.io/bgp", "ports": [{"port": 80}]}})
    created = time.monotonic() - started

    def allocated():
        return sum(1 for ips in all_ingress(lab, services).values() if ips) == 500
    wait_for(allocated, 120, "500 addresses written")
    allocated_at = time.monotonic() - started
    ingress = all_ingress(lab, services)
    addresses = [ips[0] for ips in ingress.values()]
    assert len(set(addresses)) == 500
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("100.64.0.0/22") for a in addresses)

    def announced():
        routes = tor.ns.run("ip", "route", "show", "proto", "bird", "root", "100.64.0.0/22").stdout
        return len(re.findall(r"^100\.64\.\S+", routes, re.M)) == 500
    wait_for(announced, 120, "500 /32s at the ToR")
    announced_at = time.monotonic() - started
    # Cluster policy: every node but the excluded one.
    assert tor_next_hops(tor, f"{addresses[0]}/32") == hops(1, 2, 3)

    # Pool exhausted: the 501st stays pending, with a Warning Event saying why.
    services.create("late", {}, local=False)
    events = []

    def warned():
        events[:] = [e for e in lab.call(services.core.list_namespaced_event, "default").items
                     if e.involved_object.name == "late" and e.reason == "AllocationFailed"]
        return bool(events)
    wait_for(warned, 30, "an AllocationFailed Event for the 501st Service")
    assert events[0].type == "Warning" and "exhausted" in events[0].message, events[0].message
    assert services.ingress("late") == []

    # The leader dies without releasing its Lease: another agent takes over once the Lease expires, starting
    # from what is in the Services' status, so nothing is given twice.
    crash(lab, lab.nodes[leader])
    lab.call(services.core.delete_namespaced_service, "lb000", "default")  # frees one address
    wait_for(lambda: lease_holder(lab) not in (None, leader), 60, "a new allocator leader")
    wait_for(lambda: services.ingress("late") != [], 60, "the freed address given to the pending Service")
    final = [ips for name, ips in all_ingress(lab, services).items() if ips]
    flat = [ip for ips in final for ip in ips]
    assert len(flat) == len(set(flat)) == 500
    assert services.ingress("late") == [ingress["lb000"][0]]
    # The pod CIDRs of the living nodes were never disturbed.
    living = [n.index for n in lab.nodes.values() if n.agent is not None]
    assert all(tor_next_hops(tor, f"10.244.{i}.0/24") == hops(i) for i in living)
    lab.check_agents()
    print(f"\n500 LoadBalancer Services: created in {created:.2f} s, all allocated after {allocated_at:.2f} s, "
          f"all announced at the ToR after {announced_at:.2f} s; failover from {leader} to {lease_holder(lab)}")


def test_an_agent_restart_keeps_its_service_address_at_the_tor_throughout(fabric):
    """SIGTERM and start again (a DaemonSet rollout): the ToR keeps node1's routes under graceful restart, and
    the restarted agent's first announcements already carry the Service address (the speaker waits for the
    Service source), so its End-of-RIB sweeps nothing it still announces."""
    lab, tor, services = fabric
    services.create("solo", {"node1": ["10.244.1.20"]}, local=True)
    services.set_ingress("solo", "198.51.100.20")
    wait_for(lambda: tor_next_hops(tor, "198.51.100.20/32") == hops(1), 30, "the address from node1")
    node1 = lab.nodes["node1"]
    missing, polls = 0, 0
    lab.group.stop_process(node1.agent, timeout=20)
    lab.start_agent(node1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # through the restart, its End-of-RIB and the stale sweep after it
        polls += 1
        if tor_next_hops(tor, "198.51.100.20/32") != hops(1) or tor_next_hops(tor, "10.244.1.0/24") != hops(1):
            missing += 1
        time.sleep(0.01)
    lab.check_agents()
    assert "n1" in tor.birdc("show", "protocols") and tor.established("n1")
    assert missing == 0, f"the ToR lacked node1's routes in {missing} of {polls} polls"
    print(f"\nrestart: node1's Service address and pod CIDR present at the ToR in all {polls} polls")
