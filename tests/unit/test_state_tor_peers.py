"""Desired state with ToR peers: ASN models, selectors, annotations, passwords, sources, communities."""

import json
from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.config import PasswordRef, parse_config
from bgpnet.model import Md5Password, NodeInfo
from bgpnet.state import announcements, mesh_peers, node_asn, required_lookups, speaker_intent

REF = PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "tor")
CFG = parse_config({
    "asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd10:244::/48"], "nodeToNodeMesh": True,
    "communities": ["64512:100"],
    "peers": [{"address": "172.19.1.1", "asn": 65101, "multihop": 2, "nodeSelector": {"bgpnet.io/rack": "r1"},
               "importPolicy": {"acceptDefaultRoute": True, "maxPrefixes": 10, "maxPrefixAction": "teardown"}},
              {"address": "172.19.2.1", "asn": 65102, "nodeSelector": {"bgpnet.io/rack": "r2"},
               "password": {"secret": {"namespace": "bgpnet-system", "name": "bgpnet-bgp-passwords",
                                       "key": "tor"}}}]})


def node(name, ip, n, rack, asn=None, annotations=()):
    labels = (("bgpnet.io/rack", rack),) + ((("bgpnet.io/asn", str(asn)),) if asn else ())
    return NodeInfo(name, (A(ip),), (N(f"10.244.{n}.0/24"),), labels=labels, annotations=tuple(annotations))


R1A, R1B = node("a", "172.20.1.2", 1, "r1", 65001), node("b", "172.20.2.2", 2, "r1", 65001)
R2A = node("c", "172.20.3.2", 3, "r2", 65002)
NODES = {n.name: n for n in (R1A, R1B, R2A)}


def test_mesh_only_between_nodes_of_the_same_asn():
    assert {p.address for p in mesh_peers(CFG, R1A, NODES)} == {A("172.20.2.2")}
    assert {(p.asn, p.local_asn) for p in mesh_peers(CFG, R1A, NODES)} == {(65001, 65001)}
    assert mesh_peers(CFG, R2A, NODES) == frozenset()


def test_rack_peer_selected_by_label_with_node_asn_kernel_source_and_policy():
    intent = speaker_intent(CFG, R1A, NODES, sources={A("172.19.1.1"): A("172.20.1.2")})
    tor = next(p for p in intent.peers if p.address == A("172.19.1.1"))
    assert (tor.asn, tor.local_asn, tor.local_address, tor.ttl) == (65101, 65001, A("172.20.1.2"), 2)
    assert A("172.19.2.1") not in {p.address for p in intent.peers}
    policy = intent.policy_for(A("172.19.1.1"))
    assert policy.own_asn == 65001 and policy.accept_default_route and policy.max_prefixes == 10
    assert policy.max_prefix_action == "teardown"
    mesh_policy = intent.policy_for(A("172.20.2.2"))
    assert mesh_policy.own_asn == 65001 and not mesh_policy.accept_default_route


def test_a_peer_waits_for_its_password_and_gets_it_when_read():
    assert required_lookups(CFG, R2A) == (frozenset({A("172.19.2.1")}), frozenset({REF}))
    without = speaker_intent(CFG, R2A, NODES)
    assert without.peers == frozenset()
    assert any("MD5 password (secret bgpnet-system/bgpnet-bgp-passwords key tor) unavailable" in p
               for p in without.problems)
    with_pw = speaker_intent(CFG, R2A, NODES, passwords={REF: Md5Password("s3cret-key")})
    (peer,) = with_pw.peers
    assert peer.md5 == Md5Password("s3cret-key") and "s3cret" not in repr(peer)


def test_annotation_peers_replace_globals_and_bad_annotations_are_problems_not_crashes():
    annotated = node("a", "172.20.1.2", 1, "r1", annotations=(
        ("bgpnet.io/peers", json.dumps([{"address": "172.19.1.1", "asn": 65111}, {"address": "fd00::1",
                                                                                    "asn": 65111}])),))
    intent = speaker_intent(CFG, annotated, {"a": annotated})
    assert {(p.address, p.asn) for p in intent.peers} == {(A("172.19.1.1"), 65111)}
    assert any("no IPv6 address to peer from" in p for p in intent.problems)
    broken = node("a", "172.20.1.2", 1, "r1", annotations=(("bgpnet.io/peers", "[{"),
                                                            ("bgpnet.io/asn", "sixty")))
    intent = speaker_intent(CFG, broken, {"a": broken})
    assert {p.address for p in intent.peers} == {A("172.19.1.1")}  # the global rack peer still applies
    assert any("annotation bgpnet.io/peers ignored" in p for p in intent.problems)
    assert any("invalid bgpnet.io/asn 'sixty'" in p for p in intent.problems)
    assert node_asn(CFG, broken) == 64512


def test_disabled_peers_are_left_out_and_communities_merge_global_and_node():
    intent = speaker_intent(CFG, R1A, NODES, disabled={A("172.19.1.1")})
    assert A("172.19.1.1") not in {p.address for p in intent.peers}
    tagged = node("a", "172.20.1.2", 1, "r1", annotations=(("bgpnet.io/communities", "64512:7,64512:100"),
                                                            ("bgpnet.io/large-communities", "1:2:3")))
    (ann,) = announcements(CFG, tagged)
    assert ann.communities == ("64512:100", "64512:7") and ann.large_communities == ("1:2:3",)
    problems = []
    (ann,) = announcements(CFG, node("a", "172.20.1.2", 1, "r1", annotations=(("bgpnet.io/communities", "x"),)),
                           problems)
    assert ann.communities == ("64512:100",) and problems
