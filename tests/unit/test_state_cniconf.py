"""Desired state (mesh peers, announcements, router id) and the rendered CNI conflist."""

import json
from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.cniconf import CONFLIST_NAME, render_conflist, write_conflist
from bgpnet.config import CniSettings, parse_config
from bgpnet.model import BgpPeer, NodeInfo
from bgpnet.state import import_policy, mesh_peers, router_id, speaker_intent

CFG = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd00:10:244::/48"], "holdTime": 6})


def node(name, v4=None, v6=None, cidrs=()):
    ips = tuple(A(x) for x in (v4, v6) if x)
    return NodeInfo(name=name, internal_ips=ips, pod_cidrs=tuple(N(c) for c in cidrs))


def test_mesh_peers_every_other_node_per_shared_family():
    me = node("n1", "172.31.0.1", "fd00::1", ["10.244.1.0/24"])
    nodes = {"n1": me, "n2": node("n2", "172.31.0.2", "fd00::2"), "n3": node("n3", "172.31.0.3")}
    assert mesh_peers(CFG, me, nodes) == {
        BgpPeer(A("172.31.0.2"), 64512, A("172.31.0.1"), 64512, hold_time=6, description="n2", mesh=True),
        BgpPeer(A("fd00::2"), 64512, A("fd00::1"), 64512, hold_time=6, description="n2", mesh=True),
        BgpPeer(A("172.31.0.3"), 64512, A("172.31.0.1"), 64512, hold_time=6, description="n3", mesh=True),
    }


def test_only_the_lower_address_of_a_mesh_pair_connects():
    n1, n2 = node("n1", "172.31.0.1", "fd00::1"), node("n2", "172.31.0.2", "fd00::2")
    nodes = {"n1": n1, "n2": n2}
    assert {p.passive for p in mesh_peers(CFG, n1, nodes)} == {False}
    assert {p.passive for p in mesh_peers(CFG, n2, nodes)} == {True}


def test_mesh_off_means_no_peers():
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "nodeToNodeMesh": False})
    me = node("n1", "172.31.0.1")
    assert mesh_peers(cfg, me, {"n1": me, "n2": node("n2", "172.31.0.2")}) == frozenset()


def test_intent_without_own_node_is_empty_and_announces_own_cidrs_otherwise():
    other = node("n2", "172.31.0.2", cidrs=["10.244.2.0/24"])
    assert speaker_intent(CFG, None, {"n2": other}).peers == frozenset()
    me = node("n1", "172.31.0.1", cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"])
    intent = speaker_intent(CFG, me, {"n1": me, "n2": other})
    assert {a.prefix for a in intent.announcements} == {N("10.244.1.0/24"), N("fd00:10:244:1::/64")}
    assert [p.address for p in intent.peers] == [A("172.31.0.2")]


def test_policy_and_router_id():
    me = node("n1", "172.31.0.1", cidrs=["10.244.1.0/24"])
    assert import_policy(CFG, me).own_cidrs == (N("10.244.1.0/24"),)
    assert router_id(me) == A("172.31.0.1")
    v6_only = node("n6", v6="fd00::6")
    assert router_id(v6_only) == router_id(node("n6", v6="fd00::7"))  # stable: derived from the name
    assert router_id(v6_only) != router_id(node("other", v6="fd00::6"))


def test_conflist_render_and_atomic_write(tmp_path):
    text = render_conflist([N("10.244.1.0/24"), N("fd00:10:244:1::/64")], CniSettings(mtu=1450))
    doc = json.loads(text)
    assert doc["name"] == "bgpnet" and doc["cniVersion"] == "1.0.0"
    assert doc["plugins"] == [{"type": "bgpnet-cni", "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"],
                               "mtu": 1450, "dataDir": "/var/lib/cni/bgpnet"},
                              {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
                              {"type": "bandwidth", "capabilities": {"bandwidth": True}}]
    assert write_conflist(tmp_path, [N("10.244.1.0/24")], CniSettings()) is True
    assert write_conflist(tmp_path, [N("10.244.1.0/24")], CniSettings()) is False  # unchanged: no rewrite
    assert write_conflist(tmp_path, [N("10.244.7.0/24")], CniSettings()) is True
    assert json.loads((tmp_path / CONFLIST_NAME).read_text())["plugins"][0]["podCIDRs"] == ["10.244.7.0/24"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFLIST_NAME]  # no temp files left behind


def test_chained_reference_plugins_can_be_switched_off():
    doc = json.loads(render_conflist([N("10.244.1.0/24")], CniSettings(port_map=False, bandwidth=False)))
    assert [p["type"] for p in doc["plugins"]] == ["bgpnet-cni"]
    doc = json.loads(render_conflist([N("10.244.1.0/24")], CniSettings(bandwidth=False)))
    assert [p["type"] for p in doc["plugins"]] == ["bgpnet-cni", "portmap"]
