"""ToR peering with real BIRD2 routers: every ASN model, ECMP across two ToRs, next-hop resolution, MD5,
import policy and live reconfiguration — real agents, ExaBGP, kernel routes and bgpnet-cni pods."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.privileged.tor_topology import (
    CLUSTER_CIDRS,
    TorLab,
    bird_common,
    bird_neighbor,
    link_addresses,
    wait_for,
)

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

BASE = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
        "startupGracePeriod": 5}


def link_peers(index: int, slot: int, asn: int, **extra) -> list[dict]:
    r4, _, r6, _ = link_addresses(index, slot)
    return [{"address": r4, "asn": asn, **extra}, {"address": r6, "asn": asn, **extra}]


def tor_sessions(tor_asn: int, nodes: dict[int, int], slot: int = 0, extra: str = "") -> str:
    """BIRD protocols towards nodes {index: asn} on their link `slot`, IPv4 and IPv6."""
    out = ""
    for index, asn in nodes.items():
        _, n4, _, n6 = link_addresses(index, slot)
        out += bird_neighbor(f"n{index}v4", tor_asn, n4, asn, extra=extra)
        out += bird_neighbor(f"n{index}v6", tor_asn, n6, asn, extra=extra)
    return out


def pods_reach_each_other(lab: TorLab) -> list[tuple[str, str]]:
    pods = [p for n in lab.nodes.values() for p in n.pods]
    return [(a.name, ip) for a in pods for b in pods if a is not b for ip in b.ips if not lab.ping(a, ip)]


def test_ebgp_as_per_node_with_per_node_peers_from_annotations(lab_group, tmp_path):
    lab = TorLab(lab_group, tmp_path, {**BASE, "communities": ["64512:100"], "largeCommunities": ["64512:1:1"]})
    tor = lab.add_router("tor", 1)
    lab.start_bird(tor, bird_common(tor) + tor_sessions(65100, {1: 65001, 2: 65002}))
    for i in (1, 2):
        lab.add_node(i, [tor], labels={"bgpnet.io/asn": str(65000 + i)},
                     annotations={"bgpnet.io/peers": json.dumps(link_peers(i, 0, 65100)),
                                  "bgpnet.io/communities": f"64512:20{i}"})
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]

    def converged():
        lab.check_agents()
        return (n1.gateways("10.244.2.0/24") == {"172.20.1.1"} and n2.gateways("10.244.1.0/24") == {"172.20.2.1"}
                and n1.gateways("fd10:244:0:2::/64", "-6") and n2.gateways("fd10:244:0:1::/64", "-6"))
    wait_for(converged, 60, what="eBGP routes via the ToR on both nodes")
    at_tor = tor.birdc("show", "route", "for", "10.244.2.0/24", "all")
    assert "BGP.as_path: 65002" in at_tor
    # Global communities plus the node's own, standard and large, on the announcement.
    assert "BGP.community: (64512,100) (64512,202)" in at_tor, at_tor
    assert "BGP.large_community: (64512, 1, 1)" in at_tor, at_tor
    # The ToR re-advertises node1's own CIDR back to node1 only if it would; either way nothing of node1's own
    # lands in its kernel.
    assert "10.244.1.0/24" not in n1.routes()
    for node in (n1, n2):
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []


def test_as_per_rack_two_racks_through_a_spine_dual_stack(lab_group, tmp_path):
    """Racks r1 (AS 65001) and r2 (AS 65002); ToRs AS 65101/65102 peered from every node of their rack by a
    global peer with a nodeSelector (multihop to the ToR's loopback); a spine (AS 65500) joins the ToRs. Mesh
    is on, but only nodes of the same ASN mesh: inside each rack."""
    peers = []
    for r in (1, 2):
        for address in (f"172.19.{r}.1", f"fd00:19:{r}::1"):
            peers.append({"address": address, "asn": 65100 + r, "multihop": 2,
                          "nodeSelector": {"bgpnet.io/rack": f"r{r}"}})
    lab = TorLab(lab_group, tmp_path, {**BASE, "nodeToNodeMesh": True, "peers": peers})
    spine = lab.add_router("spine", 9)
    tors = {r: lab.add_router(f"tor{r}", r) for r in (1, 2)}
    rack_of = {1: 1, 2: 1, 3: 2, 4: 2}
    spine_conf = bird_common(spine)
    for r, tor in tors.items():
        lab.connect_routers(spine, tor, r)
        spine_conf += bird_neighbor(f"tor{r}v4", 65500, f"172.29.{r}.2", 65100 + r)
        spine_conf += bird_neighbor(f"tor{r}v6", 65500, f"fd00:29:{r}::2", 65100 + r)
    for r, tor in tors.items():
        conf = bird_common(tor)
        conf += bird_neighbor("spinev4", 65100 + r, f"172.29.{r}.1", 65500)
        conf += bird_neighbor("spinev6", 65100 + r, f"fd00:29:{r}::1", 65500)
        for index in (i for i, rr in rack_of.items() if rr == r):
            _, n4, _, n6 = link_addresses(index, 0)
            conf += bird_neighbor(f"n{index}v4", 65100 + r, n4, 65000 + r, source=tor.loopback4, extra="multihop 2;")
            conf += bird_neighbor(f"n{index}v6", 65100 + r, n6, 65000 + r, source=tor.loopback6, extra="multihop 2;")
        lab.start_bird(tor, conf)
    lab.start_bird(spine, spine_conf)
    for index, r in rack_of.items():
        lab.add_node(index, [tors[r]], labels={"bgpnet.io/rack": f"r{r}", "bgpnet.io/asn": str(65000 + r)})

    def converged():
        lab.check_agents()
        for node in lab.nodes.values():
            others = {n.pod_cidrs[0] for n in lab.nodes.values() if n is not node}
            others6 = {n.pod_cidrs[1] for n in lab.nodes.values() if n is not node}
            if set(node.routes("-4")) != others or set(node.routes("-6")) != others6:
                return False
        return True
    wait_for(converged, 90, what="every node to learn every other node's CIDRs, both families")
    n1 = lab.nodes["node1"]
    # Rack-local routes come over the in-rack mesh (iBGP; node2's next hop 172.20.2.2 is not on node1's link
    # and is resolved through the kernel to the ToR), other racks' via the ToR's loopback, resolved the same.
    assert n1.gateways("10.244.2.0/24") == {"172.20.1.1"}
    assert n1.gateways("10.244.3.0/24") == {"172.20.1.1"}
    assert n1.gateways("fd10:244:0:3::/64", "-6") == {"fd00:20:1::1"}
    # No mesh session across racks: node1 runs sessions to node2 and its ToR (both families), nothing else.
    conf = (n1.workdir / "run" / "exabgp.conf").read_text()
    assert "neighbor 172.20.2.2 {" in conf and "neighbor 172.20.3.2 {" not in conf
    assert "outgoing-ttl 2;" in conf
    # The ToR re-advertises rack 1's own routes (AS path holds 65001): dropped by the own-ASN loop check.
    wait_for(lambda: "reason=as-path-loop" in lab.agent_log(n1), 30, what="an as-path-loop rejection logged")
    for node in lab.nodes.values():
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []


def test_ibgp_to_the_tor_as_route_reflector_client_resolves_next_hops(lab_group, tmp_path):
    peers = [{"address": "172.19.1.1", "asn": 64512}, {"address": "fd00:19:1::1", "asn": 64512}]
    lab = TorLab(lab_group, tmp_path, {**BASE, "peers": peers})
    tor = lab.add_router("tor", 1)
    conf = bird_common(tor)
    for index in (1, 2):
        _, n4, _, n6 = link_addresses(index, 0)
        conf += bird_neighbor(f"n{index}v4", 64512, n4, 64512, source=tor.loopback4, extra="rr client;")
        conf += bird_neighbor(f"n{index}v6", 64512, n6, 64512, source=tor.loopback6, extra="rr client;")
    lab.start_bird(tor, conf)
    for index in (1, 2):
        lab.add_node(index, [tor])
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]
    # The reflector keeps node2's own next hop (172.20.2.2), which is not on node1's link: the agent installs
    # the route via the gateway the kernel uses towards it.
    wait_for(lambda: lab.check_agents() or n1.gateways("10.244.2.0/24") == {"172.20.1.1"}, 60,
             what="reflected route resolved via the ToR")
    assert "BGP.next_hop: 172.20.2.2" in tor.birdc("show", "route", "for", "10.244.2.0/24", "all")
    wait_for(lambda: n2.gateways("fd10:244:0:1::/64", "-6") == {"fd00:20:2::1"}, 30, what="IPv6 too")
    for node in (n1, n2):
        lab.add_pod(node)
    assert pods_reach_each_other(lab) == []


def established_tcp(ns, remote: str) -> set[str]:
    out = ns.run("ss", "-tnH", "state", "established", "dst", remote).stdout
    return {" ".join(line.split()[-2:]) for line in out.splitlines() if ":179" in line}


def test_two_tors_ecmp_shrinks_and_grows_and_a_live_added_peer_keeps_other_sessions(lab_group, tmp_path):
    lab = TorLab(lab_group, tmp_path, BASE)
    tor1, tor2 = lab.add_router("tor1", 1), lab.add_router("tor2", 2)
    tor_conf = {}
    for slot, (tor, asn) in enumerate(((tor1, 65101), (tor2, 65102))):
        tor_conf[tor.name] = bird_common(tor) + "".join(
            bird_neighbor(f"n{i}v4", asn, link_addresses(i, slot)[1], 65000 + i) for i in (1, 2))
        lab.start_bird(tor, tor_conf[tor.name])
    for index in (1, 2):
        r1, r2 = link_addresses(index, 0)[0], link_addresses(index, 1)[0]
        peers = [{"address": r1, "asn": 65101}] + ([{"address": r2, "asn": 65102}] if index == 2 else [])
        lab.add_node(index, [tor1, tor2], labels={"bgpnet.io/asn": str(65000 + index)},
                     annotations={"bgpnet.io/peers": json.dumps(peers)})
    n1 = lab.nodes["node1"]
    wait_for(lambda: lab.check_agents() or n1.gateways("10.244.2.0/24") == {"172.20.1.1"}, 60,
             what="node1 learning node2 via tor1")
    tor1_session = established_tcp(n1.ns, "172.20.1.1")
    assert len(tor1_session) == 1
    tor1_since = tor1.protocol_state("n1v4").split()[4]

    # Live: node1's annotation gains tor2; the speaker adds it without bouncing the tor1 session.
    started = time.monotonic()
    lab.annotate(n1, {"bgpnet.io/peers": json.dumps([{"address": "172.20.1.1", "asn": 65101},
                                                     {"address": "172.21.1.1", "asn": 65102}])})
    wait_for(lambda: n1.gateways("10.244.2.0/24") == {"172.20.1.1", "172.21.1.1"}, 60,
             what="ECMP route via both ToRs after the live peer add")
    print(f"\nMEASURED annotation patched -> ECMP route in the kernel: {(time.monotonic() - started) * 1000:.0f} ms")
    assert established_tcp(n1.ns, "172.20.1.1") == tor1_session, "the tor1 session was re-established"
    assert tor1.protocol_state("n1v4").split()[4] == tor1_since

    # One ToR goes down: the multipath route shrinks to the other one; back up: it grows again.
    started = time.monotonic()
    lab.stop_bird(tor2)
    wait_for(lambda: n1.gateways("10.244.2.0/24") == {"172.20.1.1"}, 60, what="single path with tor2 down")
    print(f"MEASURED ToR killed -> multipath route shrunk: {(time.monotonic() - started) * 1000:.0f} ms")
    started = time.monotonic()
    lab.start_bird(tor2, tor_conf["tor2"])
    wait_for(lambda: n1.gateways("10.244.2.0/24") == {"172.20.1.1", "172.21.1.1"}, 60,
             what="ECMP again with tor2 back")
    print(f"MEASURED ToR restarted -> multipath route grown: {(time.monotonic() - started) * 1000:.0f} ms")
    assert established_tcp(n1.ns, "172.20.1.1") == tor1_session


SECRET = {"namespace": "bgpnet-system", "name": "bgpnet-bgp-passwords", "key": "tor"}


def secret_body(password: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": SECRET["name"], "namespace": SECRET["namespace"]},
            "data": {"tor": base64.b64encode(password.encode()).decode()}}


def test_md5_wrong_password_no_session_right_password_up_and_never_logged(lab_group, tmp_path):
    peers = [{"address": "172.20.1.1", "asn": 65100, "password": {"secret": SECRET}}]
    lab = TorLab(lab_group, tmp_path, {**BASE, "peers": peers})
    tor = lab.add_router("tor", 1)
    lab.start_bird(tor, bird_common(tor) + bird_neighbor("n1v4", 65100, "172.20.1.2", 65001,
                                                         extra='password "s3cr3t-Right";'))
    lab.call(lab.api.create_namespaced_secret, SECRET["namespace"], secret_body("wr0ng-Pass"))
    n1 = lab.add_node(1, [tor], labels={"bgpnet.io/asn": "65001"})
    conf = n1.workdir / "run" / "exabgp.conf"
    wait_for(lambda: lab.check_agents() or (conf.exists() and "md5-password" in conf.read_text()), 30,
             what="the neighbor configured with its MD5 key")
    # Wrong key: the kernel drops the ToR's segments (bad MD5 signature), so no session comes up.
    for _ in range(40):
        assert not tor.established("n1v4")
        assert "10.244" not in tor.birdc("show", "route", "protocol", "n1v4")
        time.sleep(0.2)
    # Rotating the Secret is picked up live (re-read every route sync period): the session comes up.
    lab.call(lab.api.replace_namespaced_secret, SECRET["name"], SECRET["namespace"], secret_body("s3cr3t-Right"))
    wait_for(lambda: tor.established("n1v4"), 60, what="MD5 session up with the right password")
    wait_for(lambda: "10.244.1.0/24" in tor.birdc("show", "route", "protocol", "n1v4"), 30,
             what="node1's CIDR at the ToR")
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    for text in (lab.agent_log(n1), (n1.workdir / "run" / "exabgp.log").read_text()):
        for secret in ("s3cr3t-Right", "wr0ng-Pass"):
            assert secret not in text and base64.b64encode(secret.encode()).decode() not in text


def test_import_policy_only_allowed_routes_reach_the_kernel(lab_group, tmp_path):
    """The ToR sends a default route, another node's pod /32, another node's address /32, a /8 and node1's
    own CIDR. node1 accepts only the default (configured for that peer): the pod /32 lies inside node2's CIDR
    but does not originate at node2's ASN, a hijack; node2 does not take the default (not configured); every
    refusal is logged with peer and reason."""
    lab = TorLab(lab_group, tmp_path, BASE)
    tor = lab.add_router("tor", 1)
    statics = """
protocol static { ipv4; route 0.0.0.0/0 blackhole; route 10.244.2.7/32 blackhole; route 172.20.2.2/32 blackhole;
                  route 10.0.0.0/8 blackhole; route 10.244.1.0/24 blackhole; }
"""
    lab.start_bird(tor, bird_common(tor) + statics + tor_sessions(65100, {1: 65001, 2: 65002}).replace(
        "export all", "export where source ~ [RTS_STATIC, RTS_BGP]"))
    n1 = lab.add_node(1, [tor], default_route=False, labels={"bgpnet.io/asn": "65001"},
                      annotations={"bgpnet.io/peers": json.dumps(
                          [{"address": "172.20.1.1", "asn": 65100, "importPolicy": {"acceptDefaultRoute": True}}])})
    n2 = lab.add_node(2, [tor], labels={"bgpnet.io/asn": "65002"},
                      annotations={"bgpnet.io/peers": json.dumps([{"address": "172.20.2.1", "asn": 65100}])})
    wanted = {"0.0.0.0/0", "10.244.2.0/24"}
    wait_for(lambda: lab.check_agents() or set(n1.routes()) == wanted, 60, what="node1's allowed routes")
    log1 = lab.agent_log(n1)
    for prefix, reason in (("10.0.0.0/8", "outside-cluster-cidrs"), ("172.20.2.2/32", "outside-cluster-cidrs"),
                           ("10.244.1.0/24", "own-pod-cidr"), ("10.244.2.7/32", "pod-cidr-more-specific")):
        assert f"peer=172.20.1.1 prefix={prefix} reason={reason}" in log1
    # The ToR's own static 10.244.1.0/24 beats node1's BGP route inside BIRD (static preference 200 > BGP
    # 100), so node2 is offered node1's CIDR originated by the ToR: a hijack, refused by the origin check.
    wait_for(lambda: "peer=172.20.2.1 prefix=10.244.1.0/24 reason=wrong-origin" in lab.agent_log(n2), 30,
             what="node2 refusing the ToR's copy of node1's CIDR")
    assert "10.244.1.0/24" not in n2.routes()
    assert "0.0.0.0/0" not in n2.routes()
    assert "peer=172.20.2.1 prefix=0.0.0.0/0 reason=outside-cluster-cidrs" in lab.agent_log(n2)
    # node2's own CIDR covers the pod /32 the ToR sends: refused as overlapping its own range.
    assert "prefix=10.244.2.7/32 reason=own-pod-cidr" in lab.agent_log(n2)
    assert set(n1.routes()) == wanted
