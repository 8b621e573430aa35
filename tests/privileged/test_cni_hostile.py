"""Hostile runtime input against the real plugin on a real node namespace: every refused call answers with
the spec's code and an exact message, and leaves the node byte-for-byte as it was - links, addresses, routes
of every table and neighbours of both families, and the IPAM store's files and their contents. The node has a
wired pod already, so the store, a host veth and its routes exist and must survive untouched."""

from __future__ import annotations

import json
import subprocess

import pytest
from test_cni_support import Node, netconf

from bgpnet.lab.netns import entered
from cni import commands, request
from cni.addresses import format_ip

pytestmark = pytest.mark.privileged

OWN = "is the node's own network namespace (the plugin's), not a container's"


@pytest.fixture
def node(netns_group, tmp_path):
    node = Node(netns_group, tmp_path)
    node.add(netconf(node, cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"]), "existing", node.pod("ex1"))
    return node


def _refused(node: Node, call) -> tuple[int, int, str, str]:
    """Run `call` between two snapshots of the node; they must be identical. (exit, code, msg, details)"""
    before = node.snapshot()
    status, out, err = call()
    after = node.snapshot()
    for key in before:
        assert after[key] == before[key], f"{key} changed"
    assert out is not None, err
    return status, out["code"], out["msg"], out.get("details", "")


def _add(node: Node, netns: str, conf: dict | None = None, command: str = "ADD"):
    conf = conf or netconf(node, cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"])
    return lambda: node.cni(command, conf, "hostile", netns)


def test_add_into_the_nodes_own_netns_by_its_name_is_refused(node):
    path = node.ns.path
    assert _refused(node, _add(node, path)) == (1, 4, f"invalid CNI_NETNS {path!r}: {OWN}", "")


def test_add_into_the_nodes_own_netns_through_proc_self_is_refused(node):
    assert _refused(node, _add(node, "/proc/self/ns/net")) == (1, 4, f"invalid CNI_NETNS '/proc/self/ns/net': {OWN}",
                                                              "")


def test_add_into_the_nodes_own_netns_through_a_bind_mount_elsewhere_is_refused(node, tmp_path):
    alias = tmp_path / "innocent-looking-netns"
    alias.touch()
    subprocess.run(["mount", "--bind", node.ns.path, str(alias)], check=True)
    try:
        assert _refused(node, _add(node, str(alias))) == (1, 4, f"invalid CNI_NETNS {str(alias)!r}: {OWN}", "")
    finally:
        subprocess.run(["umount", str(alias)], check=True)


def test_check_against_the_nodes_own_netns_is_refused(node):
    conf = netconf(node, cidrs=["10.244.1.0/24"], prevResult={
        "cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": node.ns.path}],
        "ips": [{"address": "10.244.1.77/32", "interface": 0}]})
    assert _refused(node, _add(node, node.ns.path, conf, "CHECK")) == (
        1, 4, f"invalid CNI_NETNS {node.ns.path!r}: {OWN}", "")


def test_a_pod_cidr_holding_only_node_addresses_is_exhausted_without_touching_anything(node):
    # The node's uplink address as the whole pod CIDR, and a /30 whose two hosts sit on the node's loopback.
    node.ns.run("ip", "addr", "add", "10.244.9.1/32", "dev", "lo")
    node.ns.run("ip", "addr", "add", "10.244.9.2/32", "dev", "lo")
    pod = node.pod("h1")
    for cidr, held in (("172.31.250.1/32", "172.31.250.1"), ("10.244.9.0/30", "10.244.9.1, 10.244.9.2")):
        conf = netconf(node, cidrs=[cidr])
        assert _refused(node, _add(node, pod.path, conf)) == (
            1, 102, f"no IP addresses available in {cidr}", f"skipped addresses the node holds: {held}")
    assert "eth0" not in pod.run("ip", "link").stdout


def test_allocation_skips_the_nodes_addresses_of_both_families(node):
    node.ns.run("ip", "addr", "add", "10.244.8.1/32", "dev", "lo")
    node.ns.run("ip", "-6", "addr", "add", "fd00:10:244:8::1/128", "dev", "lo")
    result = node.add(netconf(node, name="other", cidrs=["10.244.8.0/29", "fd00:10:244:8::/125"]), "s1",
                      node.pod("s1"))
    assert [ip["address"] for ip in result["ips"]] == ["10.244.8.2/32", "fd00:10:244:8::2/128"]
    assert sorted(node.reservations("other")) == ["10.244.8.2", "fd00:10:244:8::2"]


def test_node_addresses_include_broadcast_and_point_to_point_peer_addresses(node):
    """What the allocator must skip is read from the node's namespace: local, broadcast and peer addresses
    of both families; IPv6 link-local ones are left out (no pod CIDR can contain them)."""
    node.ns.run("ip", "addr", "add", "10.244.8.9/29", "brd", "+", "dev", "lo")
    node.ns.run("ip", "addr", "add", "10.244.8.33", "peer", "10.244.8.34/32", "dev", "lo")
    conf = request.parse_netconf(netconf(node, cidrs=["10.244.8.0/26", "fd00:ffff:250::/64"]), "ADD")
    with entered(node.ns.path):
        held = {format_ip(*a) for a in commands.node_addresses(conf)}
    assert {"10.244.8.9", "10.244.8.15", "10.244.8.33", "10.244.8.34", "172.31.250.1",
            "127.0.0.1", "fd00:ffff:250::1", "::1"} <= held
    assert not [a for a in held if a.startswith("fe80:")]


SPECIAL = [("127.0.0.0/8", "loopback space 127.0.0.0/8"), ("0.0.0.0/8", "'this network' space 0.0.0.0/8"),
           ("169.254.0.0/16", "link-local space 169.254.0.0/16"), ("224.0.0.0/4", "multicast space 224.0.0.0/4"),
           ("fe80::/64", "link-local space fe80::/10"), ("::/128", "the unspecified address ::/128"),
           ("::1/128", "the loopback address ::1/128")]


@pytest.mark.parametrize(("cidr", "space"), SPECIAL, ids=[c for c, _ in SPECIAL])
def test_a_pod_cidr_in_special_space_is_refused(node, cidr, space):
    pod = node.pod("sp")
    conf = netconf(node, cidrs=[cidr])
    assert _refused(node, _add(node, pod.path, conf)) == (
        1, 7, f"invalid network config: \"podCIDRs\" contains {cidr!r}, which overlaps {space}: no pod address "
              "can come from there", "")
    assert "eth0" not in pod.run("ip", "link").stdout


def _padded(node: Node, size: int) -> bytes:
    data = json.dumps(netconf(node)).encode()
    return data[:-1] + b" " * (size - len(data)) + b"}"


BAD_JSON = [
    ("deep-brackets", lambda node: b"[" * 200_000, "nested deeper than 64 levels"),
    ("deep-objects", lambda node: b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 64 levels"),
    ("deep-inside-a-valid-config", lambda node: json.dumps(netconf(node, x="@")).replace(
        '"@"', "[" * 100 + "]" * 100).encode(), "nested deeper than 64 levels"),
    ("valid-but-2MiB", lambda node: _padded(node, 2 << 20), "larger than 1048576 bytes"),
    ("64MiB", lambda node: b" " * (64 << 20), "larger than 1048576 bytes"),
]


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
@pytest.mark.parametrize(("make", "problem"), [b[1:] for b in BAD_JSON], ids=[b[0] for b in BAD_JSON])
def test_too_deep_or_too_large_config_is_a_decode_failure(node, command, make, problem):
    pod = node.pod("js")
    env = node.env(command, "hostile", pod.path)
    assert _refused(node, lambda: node.call_bytes(env, make(node))) == (
        1, 6, f"failed to decode network config from stdin: {problem}", "")
