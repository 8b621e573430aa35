"""What the agent does with RFC 7606 verdicts (real RIB, policy, metrics and status; fake speaker and kernel)."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from prometheus_client.exposition import generate_latest

from bgpnet.agent import Agent
from bgpnet.config import parse_config
from bgpnet.metrics import make_registry
from bgpnet.model import NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.speaker.events import Malformed, PeerDown, PeerUp, RoutesReceived, SessionReset
from tests.unit.test_agent import (
    N1,
    N2,
    N3,
    Clock,
    FakeNodeSource,
    FakeRouteTable,
    FakeSpeaker,
    deliver_at_once,
    learned,
)

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

P2, P3 = A("172.31.0.2"), A("172.31.0.3")
C2, C20, C3 = R("10.244.2.0/24"), R("10.244.20.0/24"), R("10.244.3.0/24")


def make(tmp_path, **config):
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd10:244::/48"], "startupGracePeriod": 10,
                        "routeSyncPeriod": 60, **config})
    sources, speakers = [], []
    table = FakeRouteTable()
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=table, clock=Clock())
    agent.start()
    sources[0].on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speaker = speakers[0]
    for peer, prefixes in ((P2, ("10.244.2.0/24", "10.244.20.0/24")), (P3, ("10.244.3.0/24",))):
        speaker.on_event(PeerUp(peer))
        speaker.on_event(RoutesReceived(peer, tuple(learned(str(peer), p) for p in prefixes), ()))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}
    return agent, speaker, table


def metric_lines(agent, name):
    text = generate_latest(make_registry(agent.snapshot)).decode()
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_treat_as_withdraw_removes_what_the_message_carried_and_is_counted(tmp_path):
    agent, speaker, table = make(tmp_path)
    speaker.on_event(RoutesReceived(P2, (), (C20,), Malformed("treat-as-withdraw", "ORIGIN value 5", b"\x05")))
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}
    snap = agent.snapshot()
    assert snap.peers[0].malformed == {"treat-as-withdraw": 1}
    assert any("ORIGIN value 5" in e for e in snap.last_errors)
    assert ('bgpnet_bgp_malformed_updates_total{action="treat-as-withdraw",peer="172.31.0.2",peer_asn="64512"} 1.0'
            in metric_lines(agent, "bgpnet_bgp_malformed_updates_total"))


def test_session_reset_drops_every_route_of_that_peer_only(tmp_path):
    agent, speaker, table = make(tmp_path, gracefulRestart={"restartTime": 30})
    speaker.on_event(SessionReset(P2, Malformed("session-reset", "withdrawn routes overrun the UPDATE")))
    agent.reconcile()
    assert set(table.kernel) == {C3}
    # The teardown that follows (a NOTIFICATION) must not bring a graceful-restart hold of nothing back.
    speaker.on_event(PeerDown(P2, "peer reset, message (closing connection) error(the TCP connection was closed)"))
    agent.reconcile()
    assert set(table.kernel) == {C3}
    assert agent.snapshot().peers[0].malformed == {"session-reset": 1}
    # A clean UPDATE after the session is back is installed as usual.
    speaker.on_event(PeerUp(P2))
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}


def test_every_peer_has_every_action_from_the_start(tmp_path):
    agent, _, _ = make(tmp_path)
    lines = metric_lines(agent, "bgpnet_bgp_malformed_updates_total")
    assert len(lines) == 2 * 3 and all(line.endswith(" 0.0") for line in lines)


def test_status_metrics_and_health_are_total_over_ipv4_and_ipv6_peers_with_refusals(tmp_path):
    """Refusals from an IPv4 and an IPv6 peer at once: every status path must still answer (it sorted peers of
    both families together and raised TypeError)."""
    v6a, v6b = A("fd00::2"), A("fd00::3")
    n1 = NodeInfo("n1", (A("172.31.0.1"), A("fd00::1")), (N("10.244.1.0/24"), N("fd10:244:0:1::/64")))
    n2 = NodeInfo("n2", (A("172.31.0.2"), v6a), (N("10.244.2.0/24"), N("fd10:244:0:2::/64")))
    n3 = NodeInfo("n3", (A("172.31.0.3"), v6b), (N("10.244.3.0/24"), N("fd10:244:0:3::/64")))
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd10:244::/48"], "startupGracePeriod": 10})
    sources, speakers = [], []
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=FakeRouteTable(), clock=Clock())
    agent.start()
    sources[0].on_change({"n1": n1, "n2": n2, "n3": n3})
    agent.reconcile()
    speaker = speakers[0]
    # Each peer sends this node's own pod CIDR back (FRR and GoBGP do): refused as own-pod-cidr.
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.1.0/24"),), ()))
    speaker.on_event(RoutesReceived(v6a, (learned("fd00::2", "fd10:244:0:1::/64"),), ()))
    speaker.on_event(RoutesReceived(v6b, (), (), Malformed("treat-as-withdraw", "ORIGIN missing")))
    agent.reconcile()
    snap = agent.snapshot()
    by_address = {p.address: p for p in snap.peers}
    assert by_address["172.31.0.2"].rejected == {"own-pod-cidr": 1}
    assert by_address["fd00::2"].rejected == {"own-pod-cidr": 1}
    assert by_address["fd00::3"].malformed == {"treat-as-withdraw": 1}
    assert metric_lines(agent, "bgpnet_bgp_prefixes_rejected_total")
