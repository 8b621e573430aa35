"""bgpnet-cni against the real kernel: the installed plugin run inside a fresh "node" namespace, pods in their
own namespaces, traffic only between those namespaces."""

from __future__ import annotations

import pytest
from test_cni_support import Node, netconf, ping_eventually

pytestmark = pytest.mark.privileged


@pytest.fixture
def node(netns_group, tmp_path):
    return Node(netns_group, tmp_path)


def _pod_ip(result: dict, version: str = "4") -> str:
    want_v6 = version == "6"
    return next(ip["address"].split("/")[0] for ip in result["ips"] if (":" in ip["address"]) == want_v6)


def test_add_wires_pod_and_pings_host_and_other_pod(node):
    conf = netconf(node)
    p1, p2 = node.pod("p1"), node.pod("p2")
    r1 = node.add(conf, "c1", p1)
    r2 = node.add(conf, "c2", p2)
    ip1, ip2 = _pod_ip(r1), _pod_ip(r2)
    assert ip1 != ip2
    # Pod side: a /32 and the link-local gateway, MTU from the config.
    addr = p1.run("ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert f"{ip1}/32" in addr
    assert "default via 169.254.1.1 dev eth0 onlink" in p1.run("ip", "route").stdout
    assert "mtu 1400" in p1.run("ip", "link", "show", "eth0").stdout
    # Host side: deterministic veth, proxy ARP without delay, forwarding, a scope-link /32.
    host_if = r1["interfaces"][0]["name"]
    assert host_if.startswith("bgp") and len(host_if) <= 15
    assert f"{ip1} dev {host_if} scope link" in node.routes()
    assert node.ns.run("sysctl", "-n", f"net.ipv4.conf.{host_if}.proxy_arp").stdout.strip() == "1"
    assert node.ns.run("sysctl", "-n", f"net.ipv4.neigh.{host_if}.proxy_delay").stdout.strip() == "0"
    assert node.ns.run("sysctl", "-n", f"net.ipv4.conf.{host_if}.forwarding").stdout.strip() == "1"
    # Traffic: pod -> node, pod -> pod, node -> pod.
    assert ping_eventually(p1, node.ip4)
    assert ping_eventually(p1, ip2)
    assert ping_eventually(p2, ip1)
    assert ping_eventually(node.ns, ip2)
    # Result shape for 1.1.0: sandbox on the pod interface, ips point at it, no "version" key.
    assert r1["interfaces"][1] == {"name": "eth0", "mac": r1["interfaces"][1]["mac"], "sandbox": p1.path,
                                   "mtu": 1400}
    assert r1["ips"] == [{"address": f"{ip1}/32", "interface": 1, "gateway": "169.254.1.1"}]
    assert r1["routes"] == [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}]


def test_dual_stack_pods_reach_each_other_over_ipv6(node):
    conf = netconf(node, cidrs=["10.244.2.0/24", "fd00:10:244:2::/64"])
    p1, p2 = node.pod("d1"), node.pod("d2")
    r1, r2 = node.add(conf, "d1", p1), node.add(conf, "d2", p2)
    v6a, v6b = _pod_ip(r1, "6"), _pod_ip(r2, "6")
    assert f"{v6a}/128" in p1.run("ip", "-o", "-6", "addr", "show", "dev", "eth0").stdout
    assert "default via fe80::1 dev eth0" in p1.run("ip", "-6", "route").stdout
    host_if = r1["interfaces"][0]["name"]
    assert "fe80::1/64" in node.ns.run("ip", "-6", "addr", "show", "dev", host_if).stdout
    assert f"{v6a} dev {host_if}" in node.routes("-6")
    assert ping_eventually(p1, v6b)
    assert ping_eventually(p1, node.ip6)
    assert ping_eventually(p2, _pod_ip(r1, "4"))


def test_check_passes_then_fails_when_a_route_is_broken(node):
    conf = netconf(node, cidrs=["10.244.3.0/24", "fd00:10:244:3::/64"])
    pod = node.pod("k1")
    result = node.add(conf, "k1", pod)
    checked = dict(conf, prevResult=result)
    code, out, _ = node.cni("CHECK", checked, "k1", pod.path)
    assert (code, out) == (0, None)
    pod.run("ip", "route", "del", "default")
    code, out, _ = node.cni("CHECK", checked, "k1", pod.path)
    assert code != 0 and out["code"] == 103
    assert out["details"] == "pod default route via 169.254.1.1 is missing"
    # A broken host route is found too.
    ip = _pod_ip(result)
    node.ns.run("ip", "route", "del", f"{ip}/32")
    code, out, _ = node.cni("CHECK", checked, "k1", pod.path)
    assert f"host route {ip}/32 dev {result['interfaces'][0]['name']} is missing" in out["details"]


def test_del_twice_and_without_netns_or_prev_result(node):
    conf = netconf(node)
    pod = node.pod("x1")
    result = node.add(conf, "x1", pod)
    host_if = result["interfaces"][0]["name"]
    code, out, err = node.cni("DEL", dict(conf, prevResult=result), "x1", pod.path)
    assert (code, out) == (0, None), err
    assert host_if not in node.host_veths()
    assert "eth0" not in pod.run("ip", "link").stdout
    assert node.reservations("podnet") == {}
    assert _pod_ip(result) not in node.routes()
    # containerd's second DEL: empty CNI_NETNS, no prevResult.
    code, out, err = node.cni("DEL", conf, "x1", "")
    assert (code, out) == (0, None), err


def test_add_for_a_0_4_0_config_reports_ip_versions(node):
    pod = node.pod("v4")
    result = node.add(netconf(node, version="0.4.0"), "v4", pod)
    assert result["cniVersion"] == "0.4.0"
    assert result["ips"][0]["version"] == "4"
    assert "mtu" not in result["interfaces"][1]


def test_failed_host_route_midway_leaves_nothing_behind(node):
    """The address the allocator will pick is already routed on the node: the route step fails after the
    reservation and the veth exist, and both must be undone."""
    conf = netconf(node, cidrs=["10.244.4.0/30"])  # two host addresses, .1 and .2, both routed already
    node.ns.run("ip", "route", "add", "10.244.4.1/32", "dev", "up0")
    node.ns.run("ip", "route", "add", "10.244.4.2/32", "dev", "up0")
    pod = node.pod("f1")
    code, out, err = node.cni("ADD", conf, "f1", pod.path)
    assert code != 0 and out["code"] == 100
    assert "add host route 10.244.4.1/32" in out["msg"] and "File exists" in out["msg"]
    assert node.host_veths() == []
    assert "eth0" not in pod.run("ip", "link").stdout
    assert node.reservations("podnet") == {}


def test_failed_pod_side_midway_leaves_nothing_behind(node):
    """IPv6 is disabled inside the pod: the host side is fully wired before the pod-side IPv6 address
    fails; rollback must remove the veth, both host routes and both reservations."""
    conf = netconf(node, cidrs=["10.244.5.0/24", "fd00:10:244:5::/64"])
    pod = node.pod("f2")
    pod.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    code, out, err = node.cni("ADD", conf, "f2", pod.path)
    assert code != 0 and out["code"] == 100, (out, err)
    assert out["msg"].startswith("add fd00:10:244:5::")
    assert node.host_veths() == []
    assert "10.244.5." not in node.routes() and "fd00:10:244:5" not in node.routes("-6")
    assert "eth0" not in pod.run("ip", "link").stdout
    assert node.reservations("podnet") == {}


def test_bad_netns_changes_nothing(node):
    code, out, _ = node.cni("ADD", netconf(node), "b1", "/proc/self/ns/mnt")
    assert (code, out["code"], out["msg"]) == (1, 4, "invalid CNI_NETNS '/proc/self/ns/mnt': not a network namespace")
    assert node.host_veths() == [] and node.reservations("podnet") == {}


def test_status_reports_exhaustion_and_forwarding(node):
    conf = netconf(node, cidrs=["10.244.6.0/30"])
    code, out, _ = node.cni("STATUS", conf, ifname="")
    assert (code, out) == (0, None)
    node.add(conf, "s1", node.pod("s1"))
    node.add(conf, "s2", node.pod("s2"))
    code, out, _ = node.cni("STATUS", conf, ifname="")
    assert (out["code"], out["msg"]) == (50, "no IP addresses available in 10.244.6.0/30")
    code, out, _ = node.cni("ADD", conf, "s3", node.pod("s3").path)
    assert (out["code"], out["msg"]) == (102, "no IP addresses available in 10.244.6.0/30")
    node.ns.sysctl("net.ipv4.ip_forward", 0)
    code, out, _ = node.cni("STATUS", conf, ifname="")
    assert out["code"] == 51


def test_gc_releases_stale_reservations_and_their_veths(node):
    conf = netconf(node)
    keep, stale = node.pod("g1"), node.pod("g2")
    kept = node.add(conf, "g1", keep)
    gone = node.add(conf, "g2", stale)
    gc_conf = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "g1", "ifname": "eth0"}]})
    code, out, err = node.cni("GC", gc_conf, ifname="")
    assert (code, out) == (0, None), err
    assert list(node.reservations("podnet")) == [_pod_ip(kept)]
    assert node.host_veths() == [kept["interfaces"][0]["name"]]
    assert gone["interfaces"][0]["name"] not in node.links()
