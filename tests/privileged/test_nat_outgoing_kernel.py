"""natOutgoing against the real kernel: a pod reaches an address outside the cluster only through the node's
masquerade, pod-to-pod traffic keeps the pod's own address, and turning it off removes bgpnet's table and
nothing else. Three namespaces: pod (10.244.1.2), node (forwarding), outside (198.51.100.2, which has no route
back to the pod CIDRs, like the Internet), plus a second pod (10.244.2.2) on the same node."""

from __future__ import annotations

import json
from ipaddress import ip_network as N

import pytest

from bgpnet.lab.netns import entered
from bgpnet.nat.outgoing import OutgoingNat

pytestmark = pytest.mark.privileged

POD_CIDRS = [N("10.244.1.0/24")]
CLUSTER = [N("10.244.0.0/16")]


@pytest.fixture
def net(netns_group):
    node, pod, pod2, outside = (netns_group.add(n) for n in ("node", "pod", "pod2", "outside"))
    netns_group.veth(node, "pod", pod, "eth0")
    netns_group.veth(node, "pod2", pod2, "eth0")
    netns_group.veth(node, "out", outside, "eth0")
    node.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    for ns, addr, gw in ((pod, "10.244.1.2/24", "10.244.1.1"), (pod2, "10.244.2.2/24", "10.244.2.1")):
        ns.run("ip", "addr", "add", addr, "dev", "eth0")
        ns.run("ip", "route", "add", "default", "via", gw)
    node.run("ip", "addr", "add", "10.244.1.1/24", "dev", "pod")
    node.run("ip", "addr", "add", "10.244.2.1/24", "dev", "pod2")
    node.run("ip", "addr", "add", "198.51.100.1/24", "dev", "out")
    outside.run("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0")
    # pod2 counts what arrives from pod's own address: proof that pod-to-pod traffic is not masqueraded.
    pod2.run("nft", "add table inet probe; add chain inet probe in { type filter hook input priority 0; }; "
                    "add rule inet probe in ip saddr 10.244.1.2 counter")
    # A table of somebody else's on the node, which bgpnet must never touch.
    node.run("nft", "add table inet other; add chain inet other c { type nat hook postrouting priority 50; }")
    return {"node": node, "pod": pod, "pod2": pod2, "outside": outside}


def pings(ns, address: str) -> bool:
    return ns.run("ping", "-n", "-q", "-c", "1", "-W", "1", address, check=False).returncode == 0


def tables(ns) -> set[str]:
    data = json.loads(ns.run("nft", "-j", "list", "tables").stdout)["nftables"]
    return {f"{t['table']['family']} {t['table']['name']}" for t in data if "table" in t}


def counted_from_pod(pod2) -> int:
    data = json.loads(pod2.run("nft", "-j", "list", "table", "inet", "probe").stdout)["nftables"]
    return sum(e["counter"]["packets"] for r in data if "rule" in r for e in r["rule"]["expr"] if "counter" in e)


def test_outgoing_nat_on_and_off(net):
    node, pod, pod2 = net["node"], net["pod"], net["pod2"]
    assert not pings(pod, "198.51.100.2"), "outside must not have a route back to the pod CIDR"
    nat = OutgoingNat()
    with entered(node.path):
        assert nat.sync(True, POD_CIDRS, CLUSTER)
    assert tables(node) == {"inet bgpnet", "inet other"}
    assert pings(pod, "198.51.100.2")
    assert pings(pod, "10.244.2.2")
    assert counted_from_pod(pod2) >= 1, "pod-to-pod traffic must keep the pod's own source address"
    with entered(node.path):
        assert nat.sync(True, POD_CIDRS, CLUSTER, force=True)  # the periodic re-apply: one transaction, same rules
    assert pings(pod, "198.51.100.2")
    with entered(node.path):
        assert nat.sync(False, POD_CIDRS, CLUSTER)
        assert nat.sync(False, POD_CIDRS, CLUSTER, force=True)  # removing an absent table is fine
    assert tables(node) == {"inet other"}
    assert not pings(pod, "198.51.100.2")
