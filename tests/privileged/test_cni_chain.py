"""bgpnet-cni chained with the real reference plugins (Debian containernetworking-plugins): the chain is driven
as the spec says - each plugin gets the previous one's result as prevResult on ADD, the final result on CHECK
and DEL, and DEL runs in reverse order."""

from __future__ import annotations

import pytest
from test_cni_support import REF_PLUGINS, Node, ping_eventually, plugin_path

pytestmark = pytest.mark.privileged


@pytest.fixture
def node(netns_group, tmp_path):
    return Node(netns_group, tmp_path)

HOST_PORT = 18080


def _conflist(node) -> dict:
    return {
        "cniVersion": "1.0.0", "name": "chainnet",
        "plugins": [
            {"type": "bgpnet-cni", "podCIDRs": ["10.244.7.0/24"], "mtu": 1400, "dataDir": str(node.data_dir)},
            {"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "ingressRate": 8000000, "ingressBurst": 800000,
             "egressRate": 8000000, "egressBurst": 800000},
        ],
    }


def _exe(plugin_type: str) -> str:
    return plugin_path() if plugin_type == "bgpnet-cni" else f"{REF_PLUGINS}/{plugin_type}"


def _plugin_conf(conflist: dict, entry: dict, prev: dict | None) -> dict:
    conf = dict(entry, name=conflist["name"], cniVersion=conflist["cniVersion"])
    if entry.get("capabilities", {}).get("portMappings"):
        # podman's lowercase capability keys; bgpnet-cni itself reads runtimeConfig case-insensitively
        conf["runtimeConfig"] = {"portMappings": [{"hostPort": HOST_PORT, "containerPort": 80,
                                                   "protocol": "tcp"}]}
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def _run_chain(node, command: str, conflist: dict, container_id: str, pod, prev: dict | None = None):
    plugins = conflist["plugins"] if command != "DEL" else list(reversed(conflist["plugins"]))
    result = prev
    for entry in plugins:
        if command == "CHECK" and entry["type"] == "portmap":
            # portmap 1.1.1's CHECK looks for its IPv6 DNAT chain even without IPv6 (and compares IPv4 rules
            # in it with dual-stack): it fails for every pod, whatever the main plugin did.
            continue
        env = node.env(command, container_id, pod.path)
        code, out, err = node.call(_exe(entry["type"]), env, _plugin_conf(conflist, entry, result))
        assert code == 0, f"{entry['type']} {command} failed: {out} {err}"
        if command == "ADD":
            result = out
    return result


def test_chain_add_check_del_with_reference_plugins(node):
    conflist = _conflist(node)
    pod = node.pod("c1")
    final = _run_chain(node, "ADD", conflist, "chain1", pod)
    host_if = final["interfaces"][0]["name"]
    assert host_if.startswith("bgp")
    ip = final["ips"][0]["address"].split("/")[0]
    # Each plugin did its part on top of bgpnet-cni's wiring.
    assert pod.run("sysctl", "-n", "net.core.somaxconn").stdout.strip() == "512"
    assert str(HOST_PORT) in node.ns.run("iptables-save").stdout
    assert "tbf" in node.ns.run("tc", "qdisc", "show", "dev", host_if).stdout
    assert ping_eventually(pod, node.ip4)
    _run_chain(node, "CHECK", conflist, "chain1", pod, prev=final)
    _run_chain(node, "DEL", conflist, "chain1", pod, prev=final)
    assert host_if not in node.links()
    assert str(HOST_PORT) not in node.ns.run("iptables-save").stdout
    assert node.reservations("chainnet") == {}
    assert ip not in node.routes()


def test_delegated_host_local_ipam(node):
    """With an "ipam" section bgpnet-cni runs host-local from CNI_PATH for ADD and DEL."""
    ipam_dir = node.data_dir / "host-local"
    conf = {"cniVersion": "1.0.0", "name": "delegated", "type": "bgpnet-cni", "mtu": 1400,
            "ipam": {"type": "host-local", "dataDir": str(ipam_dir), "ranges": [[{"subnet": "10.244.8.0/24"}]]}}
    pod = node.pod("h1")
    result = node.add(conf, "hl1", pod)
    ip = result["ips"][0]["address"]
    assert ip.startswith("10.244.8.") and ip.endswith("/32")
    assert (ipam_dir / "delegated" / ip.split("/")[0]).exists()
    assert ping_eventually(pod, node.ip4)
    code, out, err = node.cni("CHECK", dict(conf, prevResult=result), "hl1", pod.path)
    assert (code, out) == (0, None), err
    code, out, err = node.cni("DEL", conf, "hl1", pod.path)
    assert (code, out) == (0, None), err
    assert not (ipam_dir / "delegated" / ip.split("/")[0]).exists()
    assert node.host_veths() == []


def test_delegated_ipam_failure_is_passed_through(node):
    """host-local names no usable range: its error reaches the runtime with host-local's own code, and no
    veth is created."""
    conf = {"cniVersion": "1.0.0", "name": "badipam", "type": "bgpnet-cni",
            "ipam": {"type": "host-local", "dataDir": str(node.data_dir), "ranges": [[{"subnet": "nonsense"}]]}}
    code, out, _ = node.cni("ADD", conf, "hl2", node.pod("h2").path)
    assert code != 0
    assert "nonsense" in out["msg"] + out.get("details", ""), out  # host-local's own message and code
    assert node.host_veths() == []
