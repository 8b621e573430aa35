"""A node with no route covering 169.254.1.1 (no default route: a node that learns everything over BGP, or
refuses a default route). Proxy ARP answers for the pods' gateway only when the node has such a route, so
pods there depend on the permanent neighbour entry bgpnet-cni puts in every pod: 169.254.1.1 (and fe80::1)
-> the host veth's MAC."""

from __future__ import annotations

import json

import pytest
from test_cni_support import Node, netconf, ping_eventually

pytestmark = pytest.mark.privileged


@pytest.fixture
def node(netns_group, tmp_path):
    node = Node(netns_group, tmp_path)
    node.ns.run("ip", "route", "del", "default")
    node.ns.run("ip", "-6", "route", "del", "default")
    return node


def _neighbour(pod, gateway: str) -> dict:
    family = "-6" if ":" in gateway else "-4"
    entries = json.loads(pod.run("ip", family, "-j", "neigh", "show", gateway, "dev", "eth0").stdout)
    assert len(entries) == 1, entries
    return entries[0]


def test_pods_reach_each_other_through_a_node_without_a_route_to_their_gateway(node):
    # The precondition proxy ARP needs is really absent: the node has no route to the gateway address.
    assert node.ns.run("ip", "route", "get", "169.254.1.1", check=False).returncode != 0
    assert json.loads(node.ns.run("ip", "-6", "-j", "route", "show", "default").stdout) == []
    conf = netconf(node, cidrs=["10.244.7.0/24", "fd00:10:244:7::/64"])
    p1, p2 = node.pod("n1"), node.pod("n2")
    r1, r2 = node.add(conf, "n1", p1), node.add(conf, "n2", p2)
    for result, pod in ((r1, p1), (r2, p2)):
        host_if = result["interfaces"][0]["name"]
        host_mac = json.loads(node.ns.run("ip", "-j", "link", "show", host_if).stdout)[0]["address"]
        for gateway in ("169.254.1.1", "fe80::1"):
            entry = _neighbour(pod, gateway)
            assert (entry["lladdr"], entry["state"]) == (host_mac, ["PERMANENT"])
    ip1, ip2 = (next(ip["address"].split("/")[0] for ip in r["ips"] if "." in ip["address"]) for r in (r1, r2))
    v6_1, v6_2 = (next(ip["address"].split("/")[0] for ip in r["ips"] if ":" in ip["address"]) for r in (r1, r2))
    assert ping_eventually(p1, ip2)
    assert ping_eventually(p2, ip1)
    assert ping_eventually(p1, v6_2)
    assert ping_eventually(p2, v6_1)
    # Neither pod's gateway entry was touched by the traffic: still permanent.
    assert _neighbour(p1, "169.254.1.1")["state"] == ["PERMANENT"]


def test_check_verifies_the_permanent_gateway_neighbour(node):
    conf = netconf(node, cidrs=["10.244.7.0/24"])
    pod = node.pod("c1")
    result = node.add(conf, "c1", pod)
    checked = dict(conf, prevResult=result)
    assert node.cni("CHECK", checked, "c1", pod.path)[:2] == (0, None)
    pod.run("ip", "neigh", "replace", "169.254.1.1", "lladdr", "02:00:00:00:00:01", "dev", "eth0", "nud",
            "permanent")
    code, out, _ = node.cni("CHECK", checked, "c1", pod.path)
    assert (code, out["code"], out["msg"], out["details"]) == (
        1, 103, "check failed", "pod neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee PERMANENT is missing")
    pod.run("ip", "neigh", "del", "169.254.1.1", "dev", "eth0")
    code, out, _ = node.cni("CHECK", checked, "c1", pod.path)
    assert out["details"] == "pod neighbour 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee PERMANENT is missing"
