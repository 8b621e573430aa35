"""Multiprotocol sessions: one BGP session carrying IPv4 and IPv6 unicast — config, desired state, ExaBGP
config, process-API commands with explicit next hops, import policy and decoding of mixed-family next hops."""

import json
import subprocess
from ipaddress import ip_address as A
from ipaddress import ip_network as N
from pathlib import Path

import pytest

from bgpnet.config import ConfigError, parse_config
from bgpnet.model import Announcement, BgpPeer, LearnedRoute, NodeInfo
from bgpnet.policy import NEXT_HOP_FAMILY, ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.speaker import exabgp_process
from bgpnet.speaker.commands import announce, desired_per_peer, diff_commands, next_hops, validate_peers
from bgpnet.speaker.events import EndOfRib
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env
from bgpnet.speaker.parser import StateChange, parse_line
from bgpnet.speaker.sessions import SessionTable
from bgpnet.speaker.wire import decode_update
from bgpnet.state import other_family_lookups, speaker_intent
from tests.unit.bgp_encode import packet_line, update

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

BASE = {"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd10:244::/48"], "nodeToNodeMesh": False}
DATA = Path(__file__).parent / "data" / "exabgp"
RELAY = ["/usr/bin/python3", "-S", "/opt/relay.py", "/run/b/api.sock"]


def peer_config(**extra):
    return parse_config({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100, **extra}]}).peers[0]


# --- config ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("families", "versions"), [
    (["ipv4", "ipv6"], (4, 6)),
    (["ipv6", "ipv4"], (4, 6)),
    (["ipv6"], (6,)),
    (["ipv4"], (4,)),
])
def test_families_are_parsed_into_sorted_ip_versions(families, versions):
    assert peer_config(families=families).families == versions


def test_without_families_a_peer_carries_its_own_address_family():
    assert peer_config().families is None


@pytest.mark.parametrize(("families", "message"), [
    ([], "peers[0].families: must be a non-empty list of address families (ipv4, ipv6), got []"),
    ("ipv4", "peers[0].families: must be a non-empty list of address families (ipv4, ipv6), got 'ipv4'"),
    (["ipv4", "ipv5"], "peers[0].families: unknown address family 'ipv5' (known: ipv4, ipv6)"),
    (["IPv6"], "peers[0].families: unknown address family 'IPv6' (known: ipv4, ipv6)"),
    (["ipv4 unicast"], "peers[0].families: unknown address family 'ipv4 unicast' (known: ipv4, ipv6)"),
    ([{"ipv4": 1}], "peers[0].families: unknown address family {'ipv4': 1} (known: ipv4, ipv6)"),
    (["ipv6", "ipv6"], "peers[0].families: address family 'ipv6' listed twice"),
])
def test_invalid_families_name_the_field(families, message):
    with pytest.raises(ConfigError) as err:
        peer_config(families=families)
    assert str(err.value) == message


# --- desired state --------------------------------------------------------------------------------------------

def node(v6=True, annotations=()):
    ips = (A("172.20.1.2"), A("fd00:20:1::2")) if v6 else (A("172.20.1.2"),)
    cidrs = (N("10.244.1.0/24"), N("fd10:244:0:1::/64")) if v6 else (N("10.244.1.0/24"),)
    return NodeInfo("node1", ips, cidrs, labels=(("bgpnet.io/rack", "r1"),), annotations=tuple(annotations))


def intent(config, me):
    return speaker_intent(parse_config(config), me, {me.name: me})


def only_peer(result):
    (peer,) = result.peers
    return peer


def test_ipv4_peer_carrying_both_families_announces_ipv6_with_the_nodes_ipv6_address():
    result = intent({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100, "families": ["ipv4", "ipv6"],
                                        "nodeSelector": {"bgpnet.io/rack": "r1"}}]}, node())
    peer = only_peer(result)
    assert (peer.families, peer.local_address, peer.other_family_next_hop) == (
        (4, 6), A("172.20.1.2"), A("fd00:20:1::2"))
    assert (peer.next_hop_for(4), peer.next_hop_for(6)) == (None, A("fd00:20:1::2"))
    assert result.problems == ()


def test_ipv6_peer_carrying_both_families_announces_ipv4_with_the_nodes_ipv4_address():
    result = intent({**BASE, "peers": [{"address": "fd00:20:1::1", "asn": 65100, "families": ["ipv4", "ipv6"]}]},
                    node())
    peer = only_peer(result)
    assert (peer.families, peer.local_address, peer.next_hop_for(4), peer.next_hop_for(6)) == (
        (4, 6), A("fd00:20:1::2"), A("172.20.1.2"), None)


def test_per_node_annotation_peer_carries_both_families():
    annotation = json.dumps([{"address": "172.20.1.1", "asn": 65100, "families": ["ipv6", "ipv4"]}])
    peer = only_peer(intent(BASE, node(annotations=(("bgpnet.io/peers", annotation),))))
    assert peer.families == (4, 6) and peer.other_family_next_hop == A("fd00:20:1::2")


def test_a_peers_own_family_alone_is_the_default_session():
    result = intent({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100, "families": ["ipv4"]}]}, node())
    assert only_peer(result) == only_peer(intent({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100}]},
                                                 node()))
    assert only_peer(result).families == () and only_peer(result).other_family_next_hop is None


def test_a_family_the_node_has_no_address_of_is_left_out_and_reported():
    result = intent({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100, "families": ["ipv4", "ipv6"]}]},
                    node(v6=False))
    assert only_peer(result).families == () and only_peer(result).other_family_next_hop is None
    assert result.problems == ("peer 172.20.1.1: this node has no IPv6 address to announce as next hop; "
                               "family ipv6 not carried",)


def test_a_peer_left_without_any_family_is_not_configured():
    result = intent({**BASE, "peers": [{"address": "172.20.1.1", "asn": 65100, "families": ["ipv6"]}]},
                    node(v6=False))
    assert result.peers == frozenset()
    assert result.problems[-1] == "peer 172.20.1.1: no address family left to carry; session not configured"


# --- process-API commands -------------------------------------------------------------------------------------

MP4 = BgpPeer(A("172.20.1.1"), 65100, A("172.20.1.2"), 65001, families=(4, 6),
              other_family_next_hop=A("fd00:20:1::2"))
MP6 = BgpPeer(A("fd00:20:1::1"), 65100, A("fd00:20:1::2"), 65001, families=(4, 6),
              other_family_next_hop=A("172.20.1.2"))
PLAIN4 = BgpPeer(A("172.20.2.1"), 65100, A("172.20.2.2"), 65001)
PODS = [N("10.244.1.0/24"), N("fd10:244:0:1::/64")]


def test_multiprotocol_peers_get_both_families_and_plain_peers_their_own():
    desired = desired_per_peer([MP4, MP6, PLAIN4], PODS)
    assert desired[MP4.address] == desired[MP6.address] == frozenset(Announcement(p) for p in PODS)
    assert desired[PLAIN4.address] == frozenset({Announcement(N("10.244.1.0/24"))})


def test_other_family_prefixes_get_an_explicit_next_hop_of_their_own_family():
    desired = desired_per_peer([MP4, MP6, PLAIN4], PODS)
    assert diff_commands({}, desired, next_hops([MP4, MP6, PLAIN4])) == [
        "neighbor 172.20.1.1 announce route 10.244.1.0/24 next-hop self",
        "neighbor 172.20.1.1 announce route fd10:244:0:1::/64 next-hop fd00:20:1::2",
        "neighbor 172.20.2.1 announce route 10.244.1.0/24 next-hop self",
        "neighbor fd00:20:1::1 announce route 10.244.1.0/24 next-hop 172.20.1.2",
        "neighbor fd00:20:1::1 announce route fd10:244:0:1::/64 next-hop self",
    ]


def test_explicit_next_hop_keeps_communities_and_withdraw_needs_no_next_hop():
    item = Announcement(N("fd10:244:0:1::/64"), ("64512:1",), ("64512:1:2",))
    assert announce(MP4.address, item, A("fd00:20:1::2")) == (
        "neighbor 172.20.1.1 announce route fd10:244:0:1::/64 next-hop fd00:20:1::2 community [ 64512:1 ] "
        "large-community [ 64512:1:2 ]")
    held = desired_per_peer([MP4], PODS)
    assert diff_commands(held, desired_per_peer([MP4], PODS[:1]), next_hops([MP4])) == [
        "neighbor 172.20.1.1 withdraw route fd10:244:0:1::/64"]


def test_next_hops_only_for_peers_with_another_family():
    assert next_hops([MP4, MP6, PLAIN4]) == {MP4.address: {6: A("fd00:20:1::2")}, MP6.address: {4: A("172.20.1.2")}}


@pytest.mark.parametrize("hop", [None, A("172.20.1.2")])
def test_a_peer_carrying_another_family_without_a_next_hop_of_that_family_is_refused(hop):
    bad = BgpPeer(A("172.20.1.1"), 65100, A("172.20.1.2"), 65001, families=(4, 6), other_family_next_hop=hop)
    with pytest.raises(ValueError, match="carries IPv6 prefixes without an IPv6 next hop"):
        validate_peers([bad])


# --- ExaBGP config --------------------------------------------------------------------------------------------

def test_config_renders_every_carried_family_and_the_extended_next_hop_capability():
    text = render_config(A("172.20.1.2"), [MP4, MP6, PLAIN4], RELAY)
    assert text == (DATA / "golden_multiprotocol.conf").read_text()


def test_real_exabgp_accepts_the_multiprotocol_config(tmp_path):
    files = RunFiles(tmp_path)
    files.config.write_text(render_config(A("172.20.1.2"), [MP4, MP6, PLAIN4], exabgp_process.relay_argv(files)))
    files.env.write_text(render_env(files, listen=True))
    argv = [*exabgp_process.default_exabgp_argv(), "--env", str(files.env), "--validate", str(files.config)]
    ok = subprocess.run(argv, capture_output=True, text=True, env=exabgp_process.child_environment(), timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


# --- import policy and decoding -------------------------------------------------------------------------------

POLICY = ImportPolicy(cluster_cidrs=(N("10.244.0.0/16"), N("fd10:244::/48")), own_cidrs=(), own_asn=64512)
PEER = A("172.20.1.1")


@pytest.mark.parametrize(("prefix", "next_hop", "reason"), [
    ("fd10:244:0:2::/64", "fd00:20:1::1", None),          # IPv6 over an IPv4 session, IPv6 next hop
    ("10.244.2.0/24", "fd00:20:1::1", None),              # RFC 8950: IPv4 via an IPv6 gateway (RTA_VIA)
    ("10.244.2.0/24", "172.20.1.1", None),
    ("fd10:244:0:2::/64", "172.20.1.1", NEXT_HOP_FAMILY),  # no IPv6 route via an IPv4 gateway
    ("fd10:244:0:2::/64", "::ffff:172.20.1.1", NEXT_HOP_FAMILY),  # IPv4-mapped: no neighbour on the wire
])
def test_next_hop_family_allows_exactly_ipv4_via_ipv6(prefix, next_hop, reason):
    route = LearnedRoute(PEER, R(prefix), A(next_hop), (65100,))
    assert POLICY.reject_reason(route) == reason


@pytest.mark.parametrize(("hops", "expected"), [
    ("172.20.1.1", A("172.20.1.1")),                        # IPv4 over an IPv6 session: 4-octet next hop
    ("fd00:20:1::1", A("fd00:20:1::1")),                    # RFC 8950: 16-octet next hop for AFI 1
    ("fd00:20:1::1,fe80::1", A("fd00:20:1::1")),            # RFC 8950 with global + link-local (32 octets)
])
def test_ipv4_prefixes_in_mp_reach_decode_with_the_next_hop_as_sent(hops, expected):
    body = update(path=[(2, [65100])], mp_reach=(hops, ["10.244.2.0/24"]), mp_family=(1, 1))
    received = decode_update(A("fd00:20:1::1"), body, True, extended_next_hop=True)  # RFC 8950 negotiated
    assert [(r.prefix, r.next_hop) for r in received.announced] == [(R("10.244.2.0/24"), expected)]


def test_ipv6_prefixes_over_an_ipv4_session_decode_with_their_ipv6_next_hop():
    body = update(path=[(2, [65100])], mp_reach=("fd00:20:1::1", ["fd10:244:0:2::/64"]))
    received = decode_update(PEER, body, True)
    assert [(r.prefix, r.next_hop) for r in received.announced] == [(R("fd10:244:0:2::/64"), A("fd00:20:1::1"))]


def test_the_kernels_address_on_the_interface_towards_the_peer_wins_over_the_internal_ip():
    config = {**BASE, "peers": [{"address": "172.21.1.1", "asn": 65100, "families": ["ipv4", "ipv6"]},
                                {"address": "fd00:21:1::1", "asn": 65100, "families": ["ipv4", "ipv6"]},
                                {"address": "172.20.1.1", "asn": 65100}]}
    assert other_family_lookups(parse_config(config), node()) == {A("172.21.1.1"): 6, A("fd00:21:1::1"): 4}
    result = speaker_intent(parse_config(config), node(), {}, other_sources={
        A("172.21.1.1"): A("fd00:21:1::2"), A("fd00:21:1::1"): A("fd00:21:1::2")})  # wrong family: ignored
    hops = {p.address: p.other_family_next_hop for p in result.peers}
    assert hops == {A("172.21.1.1"): A("fd00:21:1::2"), A("fd00:21:1::1"): A("172.20.1.2"), A("172.20.1.1"): None}


# --- End-of-RIB of a multiprotocol session --------------------------------------------------------------------

BOTH = ("ipv4 unicast", "ipv6 unicast")


def session_table():
    table = SessionTable()
    table.configure([MP4], now=1.0)
    table.state_change(StateChange(MP4.address, "up"), 2.0)
    return table


def test_end_of_rib_is_passed_on_only_after_the_last_negotiated_family():
    table = session_table()
    assert not table.end_of_rib(EndOfRib(MP4.address, "ipv4 unicast", BOTH))  # IPv6 routes still to come
    assert not table.end_of_rib(EndOfRib(MP4.address, "ipv4 flow", (*BOTH, "ipv4 flow")))  # not ours
    assert table.end_of_rib(EndOfRib(MP4.address, "ipv6 unicast", BOTH))


def test_a_new_session_waits_for_every_family_again_and_one_family_sessions_pass_at_once():
    table = session_table()
    table.end_of_rib(EndOfRib(MP4.address, "ipv4 unicast", BOTH))
    table.end_of_rib(EndOfRib(MP4.address, "ipv6 unicast", BOTH))
    table.state_change(StateChange(MP4.address, "down", "hold timer"), 3.0)
    table.state_change(StateChange(MP4.address, "up"), 4.0)
    assert not table.end_of_rib(EndOfRib(MP4.address, "ipv6 unicast", BOTH))
    assert table.end_of_rib(EndOfRib(MP4.address, "ipv4 unicast", BOTH))
    # The peer negotiated only IPv4 (no IPv6 channel), or ExaBGP did not say: nothing to wait for.
    assert table.end_of_rib(EndOfRib(MP4.address, "ipv4 unicast", ("ipv4 unicast",)))
    assert table.end_of_rib(EndOfRib(MP4.address, "ipv4 unicast"))


def test_parser_attaches_the_sessions_negotiated_families_to_an_end_of_rib():
    message = json.loads(packet_line("update", "172.20.1.1", update(mp_unreach=[])))
    message["neighbor"]["negotiated"]["families"] = list(BOTH)
    parsed = parse_line(json.dumps(message))
    assert parsed == EndOfRib(A("172.20.1.1"), "ipv6 unicast") and parsed.negotiated == BOTH


# --- ExaBGP's own validation of mixed-family MP_REACH_NLRI (through bgpnet's launcher) ---------------------------

def exabgp_unpack(body: bytes, extended_next_hop: bool):
    from exabgp.bgp.message import Message
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.open.capability.negotiated import Negotiated
    from exabgp.protocol.family import AFI, SAFI

    negotiated = Negotiated(None)
    negotiated.asn4 = True
    negotiated.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]
    negotiated.nexthop = [(AFI.ipv4, SAFI.unicast, AFI.ipv6)] if extended_next_hop else []
    return Message.unpack(2, body, Direction.IN, negotiated)


@pytest.mark.usefixtures("patched")
@pytest.mark.parametrize("extended_next_hop", [False, True])
def test_exabgp_accepts_ipv4_prefixes_with_a_4_octet_next_hop_in_mp_reach(extended_next_hop):
    message = exabgp_unpack(update(path=[(2, [65100])], mp_reach=("172.20.1.1", ["10.244.2.0/24"]),
                                   mp_family=(1, 1)), extended_next_hop)
    assert [(str(n.cidr.prefix()), str(n.nexthop)) for n in message.nlris] == [("10.244.2.0/24", "172.20.1.1")]


@pytest.mark.usefixtures("patched")
def test_exabgp_accepts_an_ipv6_next_hop_for_ipv4_only_with_the_extended_next_hop_capability():
    from exabgp.bgp.message.notification import Notify

    body = update(path=[(2, [65100])], mp_reach=("fd00:20:1::1,fe80::1", ["10.244.2.0/24"]), mp_family=(1, 1))
    assert [str(n.cidr.prefix()) for n in exabgp_unpack(body, True).nlris][:1] == ["10.244.2.0/24"]
    with pytest.raises(Notify):
        exabgp_unpack(body, False)
