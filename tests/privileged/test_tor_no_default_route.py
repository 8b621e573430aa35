"""Nodes that learn everything over BGP and have no default route: nothing on them covers the pods' gateway
169.254.1.1, so proxy ARP stays silent. Pods on different nodes still reach each other through a BIRD ToR,
because every pod resolves its gateway from the permanent neighbour entry bgpnet-cni installed."""

from __future__ import annotations

import json

import pytest

from tests.privileged.tor_topology import CLUSTER_CIDRS, TorLab, bird_common, bird_neighbor, link_addresses, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

BASE = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
        "startupGracePeriod": 5}


def test_pods_on_nodes_without_a_default_route_reach_each_other_through_the_tor(lab_group, tmp_path):
    lab = TorLab(lab_group, tmp_path, BASE)
    tor = lab.add_router("tor", 1)
    sessions = ""
    for i in (1, 2):
        _, n4, _, n6 = link_addresses(i, 0)
        sessions += bird_neighbor(f"n{i}v4", 65100, n4, 65000 + i) + bird_neighbor(f"n{i}v6", 65100, n6, 65000 + i)
    lab.start_bird(tor, bird_common(tor) + sessions)
    for i in (1, 2):
        r4, _, r6, _ = link_addresses(i, 0)
        lab.add_node(i, [tor], default_route=False, labels={"bgpnet.io/asn": str(65000 + i)},
                     annotations={"bgpnet.io/peers": json.dumps([{"address": r4, "asn": 65100},
                                                                {"address": r6, "asn": 65100}])})
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]

    def converged():
        lab.check_agents()
        return (n1.gateways("10.244.2.0/24") == {"172.20.1.1"} and n2.gateways("10.244.1.0/24") == {"172.20.2.1"}
                and n1.gateways("fd10:244:0:2::/64", "-6") == {"fd00:20:1::1"}
                and n2.gateways("fd10:244:0:1::/64", "-6") == {"fd00:20:2::1"})
    wait_for(converged, 60, what="each node's route to the other's pod CIDRs via the ToR")
    for node in (n1, n2):
        # Nothing on the node covers the gateway address: no default route, no route to 169.254.1.1.
        assert node.ns.run("ip", "route", "get", "169.254.1.1", check=False).returncode != 0
        assert "default" not in node.ns.run("ip", "route", "show", "table", "all").stdout
        assert "default" not in node.ns.run("ip", "-6", "route", "show", "table", "all").stdout
    p1, p2 = lab.add_pod(n1), lab.add_pod(n2)
    for pod in (p1, p2):
        entry = json.loads(pod.ns.run("ip", "-4", "-j", "neigh", "show", "169.254.1.1", "dev", "eth0").stdout)
        assert [(e["lladdr"], e["state"]) for e in entry] == [("ee:ee:ee:ee:ee:ee", ["PERMANENT"])]
    unreachable = [(a.name, ip) for a, b in ((p1, p2), (p2, p1)) for ip in b.ips
                   if not any(lab.ping(a, ip) for _ in range(3))]
    assert unreachable == []
