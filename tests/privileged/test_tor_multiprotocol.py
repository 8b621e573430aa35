"""Multiprotocol sessions with real BIRD2 ToRs: one BGP session per node and ToR carrying IPv4 and IPv6
unicast — IPv6 over an IPv4 session (IPv6 next hops both ways, End-of-RIB per family, complete after the
last), the same with two ToRs (each gets the node's IPv6 address on its own link: ECMP), and IPv4 over an
IPv6 session (BIRD with and without RFC 8950 extended next hop) — real agents, ExaBGP, kernel routes and
bgpnet-cni pods pinging across nodes."""

from __future__ import annotations

import json

import pytest

from tests.privileged.tor_topology import CLUSTER_CIDRS, TIMERS, TorLab, bird_common, link_addresses, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

BASE = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
        "startupGracePeriod": 5}
NODES = (1, 2)


def pods_reach_each_other(lab: TorLab) -> list[tuple[str, str]]:
    pods = [p for n in lab.nodes.values() for p in n.pods]
    return [(a.name, ip) for a in pods for b in pods if a is not b for ip in b.ips if not lab.ping(a, ip)]


def multiprotocol_tor(tor, session_version: int, ipv4_channel: str = "", ipv6_channel: str = "", *,
                      slot: int = 0, asn: int = 65100) -> str:
    """One BGP protocol per node over the node's IPv4 (or IPv6) address on its link `slot`, with both channels;
    `{r4}` and `{r6}` in a channel's options stand for the router's addresses on that node's link."""
    conf = bird_common(tor)
    for index in NODES:
        r4, n4, r6, n6 = link_addresses(index, slot)
        conf += f"""
protocol bgp n{index} {{
    local as {asn}; neighbor {n4 if session_version == 4 else n6} as {65000 + index};
    {TIMERS}
    ipv4 {{ import all; export all; {ipv4_channel.format(r4=r4, r6=r6)} }};
    ipv6 {{ import all; export all; {ipv6_channel.format(r4=r4, r6=r6)} }};
}}
"""
    return conf


def start_nodes(lab: TorLab, tors: list, session_version: int) -> None:
    """Per-node peers (annotation), one per ToR (AS 65100, 65101...), each carrying both families over one
    session."""
    for index in NODES:
        peers = []
        for slot in range(len(tors)):
            r4, _, r6, _ = link_addresses(index, slot)
            peers.append({"address": r4 if session_version == 4 else r6, "asn": 65100 + slot,
                          "families": ["ipv4", "ipv6"]})
        lab.add_node(index, tors, labels={"bgpnet.io/asn": str(65000 + index)},
                     annotations={"bgpnet.io/peers": json.dumps(peers)})


def test_ipv6_over_an_ipv4_session_with_ipv6_next_hops_both_ways(lab_group, tmp_path):
    lab = TorLab(lab_group, tmp_path, BASE)
    tor = lab.add_router("tor", 1)
    # The plain channel: over a directly connected IPv4 session BIRD 2.0.12 announces IPv6 routes with its
    # IPv6 address on the shared interface (global + link-local), not an IPv4-mapped one.
    lab.start_bird(tor, multiprotocol_tor(tor, 4))
    start_nodes(lab, [tor], 4)
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]

    def converged():
        lab.check_agents()
        return (n1.gateways("10.244.2.0/24") == {"172.20.1.1"} and n2.gateways("10.244.1.0/24") == {"172.20.2.1"}
                and n1.gateways("fd10:244:0:2::/64", "-6") == {"fd00:20:1::1"}
                and n2.gateways("fd10:244:0:1::/64", "-6") == {"fd00:20:2::1"})
    wait_for(converged, 60, what="IPv4 and IPv6 routes over one IPv4 session on both nodes")
    # One session per node, IPv4, and both families in it.
    protocols = tor.birdc("show", "protocols")
    assert "n1 " in protocols and "n2 " in protocols and "n1v6" not in protocols
    # The node announced its IPv6 pod CIDR with its own IPv6 address as next hop (RFC 2545), not next-hop self
    # (its IPv4 session address), received over the IPv4 session n1.
    at_tor = tor.birdc("show", "route", "for", "fd10:244:0:1::/64", "all")
    assert "via fd00:20:1::2 on n1" in at_tor and "[n1 " in at_tor, at_tor
    assert "BGP.next_hop: fd00:20:1::2" in at_tor, at_tor
    assert "::ffff:" not in json.dumps(n1.routes("-6"))
    # BIRD sends one End-of-RIB per family; each ends its own family's graceful restart hold, and only the last
    # one says the table is complete (the startup stale sweep waits for that one).
    wait_for(lambda: "complete=True" in lab.agent_log(n1), 30, what="the complete End-of-RIB at node1")
    eors = [line for line in lab.agent_log(n1).splitlines() if "msg=end-of-rib peer=172.20.1.1 " in line]
    assert len(eors) == 2 and "complete=False" in eors[0] and "complete=True" in eors[1], eors
    for node in (n1, n2):
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []


@pytest.mark.parametrize(("ipv4_channel", "node1_gateway"), [
    # RFC 8950: IPv4 prefixes with the ToR's IPv6 address as next hop, installed via an IPv6 gateway.
    ("extended next hop on;", "inet6 fd00:20:1::1"),
    # Without it: IPv4 prefixes with an IPv4 next hop in MP_REACH_NLRI over the IPv6 session.
    ("next hop address {r4};", "172.20.1.1"),
], ids=["extended-next-hop", "ipv4-next-hop"])
def test_ipv4_over_an_ipv6_session(lab_group, tmp_path, ipv4_channel, node1_gateway):
    lab = TorLab(lab_group, tmp_path, BASE)
    tor = lab.add_router("tor", 1)
    lab.start_bird(tor, multiprotocol_tor(tor, 6, ipv4_channel=ipv4_channel))
    start_nodes(lab, [tor], 6)
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]

    def route_text(node, prefix, family="-4"):
        return node.routes(family).get(prefix, "")

    def converged():
        lab.check_agents()
        return (f"via {node1_gateway} " in route_text(n1, "10.244.2.0/24")
                and route_text(n2, "10.244.1.0/24") != ""
                and n1.gateways("fd10:244:0:2::/64", "-6") == {"fd00:20:1::1"}
                and n2.gateways("fd10:244:0:1::/64", "-6") == {"fd00:20:2::1"})
    wait_for(converged, 60, what=f"IPv4 via {node1_gateway} over one IPv6 session")
    # The node announced its IPv4 pod CIDR with its IPv4 address, whatever the ToR negotiated.
    at_tor = tor.birdc("show", "route", "for", "10.244.1.0/24", "all")
    assert "via 172.20.1.2 on n1" in at_tor and "[n1 " in at_tor, at_tor
    for node in (n1, n2):
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []


def test_two_tors_each_get_the_ipv6_next_hop_on_their_own_link(lab_group, tmp_path):
    """With two uplinks, each ToR accepts only a next hop on its own link (a directly connected eBGP peer): the
    IPv6 next hop announced over each IPv4 session is the node's IPv6 address on that session's interface
    (eth1's for ToR 2), not its InternalIP (eth0's), so IPv6 gets ECMP across both ToRs like IPv4."""
    lab = TorLab(lab_group, tmp_path, BASE)
    tors = [lab.add_router("tor1", 1), lab.add_router("tor2", 2)]
    for slot, tor in enumerate(tors):
        # `next hop address` set explicitly, as a multihop session or a router without IPv6 on the link needs.
        lab.start_bird(tor, multiprotocol_tor(tor, 4, ipv6_channel="next hop address {r6};", slot=slot,
                                              asn=65100 + slot))
    start_nodes(lab, tors, 4)
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]

    def converged():
        lab.check_agents()
        return (n1.gateways("10.244.2.0/24") == {"172.20.1.1", "172.21.1.1"}
                and n1.gateways("fd10:244:0:2::/64", "-6") == {"fd00:20:1::1", "fd00:21:1::1"}
                and n2.gateways("fd10:244:0:1::/64", "-6") == {"fd00:20:2::1", "fd00:21:2::1"})
    wait_for(converged, 60, what="IPv4 and IPv6 ECMP across both ToRs")
    at_tor2 = tors[1].birdc("show", "route", "for", "fd10:244:0:1::/64", "all")
    assert "BGP.next_hop: fd00:21:1::2" in at_tor2, at_tor2
    for node in (n1, n2):
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []
