"""The agent and BFD: a peer declared dead by BFD loses its routes at once, graceful restart included, and its BGP
session stays down until BFD is Up again; the BFD process is told the sessions of every peer with BFD enabled."""

from ipaddress import ip_address as A

from bgpnet.agent import Agent
from bgpnet.bfd.process import BfdChange, BfdSessionState
from bgpnet.config import parse_config
from bgpnet.metrics import families
from bgpnet.model import BfdPeer
from bgpnet.prefix import Prefix
from bgpnet.speaker.events import EndOfRib, PeerDown, PeerOpen, PeerUp, RoutesReceived
from bgpnet.status_view import render
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
from tests.unit.test_agent_graceful_restart import GR6

R = Prefix.parse
P2, P3 = A("172.31.0.2"), A("172.31.0.3")
C2, C3 = R("10.244.2.0/24"), R("10.244.3.0/24")


class FakeBfd:
    """The whole BfdPort: records the sessions it is given; state changes come from the test."""

    restarts = 0
    pid = 4343

    def __init__(self, on_change):
        self.on_change = on_change
        self.peers, self.started, self.stopped = None, False, False
        self.states = {}

    def start(self):
        self.started = True

    def set(self, peers):
        self.peers = frozenset(peers)

    def stop(self):
        self.stopped = True

    def sessions(self):
        return dict(self.states)


def make(tmp_path, bfd=None, peers=()):
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "startupGracePeriod": 10,
                        "routeSyncPeriod": 60, "peers": list(peers),
                        **({"bfd": bfd} if bfd is not None else {})})
    sources, speakers, bfds = [], [], []
    table, clock = FakeRouteTable(), Clock()
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=table, clock=clock,
                  make_bfd=lambda cb: bfds.append(FakeBfd(cb)) or bfds[-1])
    agent.start()
    sources[0].on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speaker = speakers[0]
    for peer, prefix in ((P2, "10.244.2.0/24"), (P3, "10.244.3.0/24")):
        speaker.on_event(PeerOpen(peer, GR6))
        speaker.on_event(PeerUp(peer))
        speaker.on_event(RoutesReceived(peer, (learned(str(peer), prefix),), ()))
        speaker.on_event(EndOfRib(peer, "ipv4 unicast"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}
    return agent, speaker, bfds, table, clock


def change(peer, old, new, *, diag=1, remote="Up"):
    return BfdChange(peer, old, new, diag, remote, 900.0)


def deliver(agent, bfd, event):
    bfd.on_change(event)
    agent.apply_speaker_events()


def test_mesh_peers_get_bfd_sessions_with_the_global_timers(tmp_path):
    agent, speaker, bfds, _, _ = make(tmp_path, bfd={"enabled": True, "minRx": 100, "minTx": 200, "multiplier": 5})
    assert len(bfds) == 1 and bfds[0].started
    assert bfds[0].peers == {BfdPeer(P2, A("172.31.0.1"), min_tx_ms=200, min_rx_ms=100, multiplier=5),
                             BfdPeer(P3, A("172.31.0.1"), min_tx_ms=200, min_rx_ms=100, multiplier=5)}


def test_without_bfd_no_process_is_started(tmp_path):
    _, _, bfds, _, _ = make(tmp_path)
    assert bfds == []


def test_bfd_down_removes_the_routes_at_once_and_keeps_bgp_down_until_bfd_is_up(tmp_path):
    agent, speaker, bfds, table, _ = make(tmp_path, bfd={"enabled": True})
    bfd = bfds[0]
    deliver(agent, bfd, change(P2, "Init", "Up", diag=0))
    deliver(agent, bfd, change(P2, "Up", "Down"))
    assert C2 not in agent.rib.routes  # gone before any round: no graceful restart hold for a dead peer
    agent.reconcile()
    assert set(table.kernel) == {C3}
    assert {p.address for p in speaker.peers} == {P3}  # ExaBGP tears the BGP session down
    assert bfd.peers is not None and {p.address for p in bfd.peers} == {P2, P3}  # BFD keeps listening for it

    # UPDATEs still in flight from the dead peer are refused, and its session drop keeps nothing.
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    speaker.on_event(PeerDown(P2, "connection closed"))
    agent.reconcile()
    assert set(table.kernel) == {C3}
    assert agent.counters.rejected[(P2, "bfd-down")] == 1

    deliver(agent, bfd, change(P2, "Down", "Init", diag=1))
    agent.reconcile()
    assert {p.address for p in speaker.peers} == {P3}  # Init is not Up yet
    deliver(agent, bfd, change(P2, "Init", "Up", diag=1))
    agent.reconcile()
    assert {p.address for p in speaker.peers} == {P2, P3}
    speaker.on_event(PeerUp(P2))
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}


def test_bfd_down_ends_a_graceful_restart_hold(tmp_path):
    agent, speaker, bfds, table, _ = make(tmp_path, bfd={"enabled": True})
    deliver(agent, bfds[0], change(P2, "Init", "Up", diag=0))
    speaker.on_event(PeerDown(P2, "connection closed"))  # TCP close: held for its restart time
    agent.reconcile()
    assert C2 in table.kernel
    deliver(agent, bfds[0], change(P2, "Up", "Down"))  # ... but BFD says the path is dead
    agent.reconcile()
    assert set(table.kernel) == {C3}


def test_the_peer_saying_admin_down_is_not_a_failure(tmp_path):
    agent, speaker, bfds, table, _ = make(tmp_path, bfd={"enabled": True})
    deliver(agent, bfds[0], change(P2, "Init", "Up", diag=0))
    deliver(agent, bfds[0], change(P2, "Up", "Down", diag=3, remote="AdminDown"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}
    assert {p.address for p in speaker.peers} == {P2, P3}


def test_down_without_having_been_up_changes_nothing(tmp_path):
    agent, speaker, bfds, table, _ = make(tmp_path, bfd={"enabled": True})
    deliver(agent, bfds[0], change(P2, "Init", "Down"))  # a peer that never runs BFD never gets Up
    agent.reconcile()
    assert set(table.kernel) == {C2, C3} and {p.address for p in speaker.peers} == {P2, P3}


def test_a_peer_whose_bfd_is_switched_off_while_held_down_comes_back(tmp_path):
    peers = [{"address": "172.31.0.9", "asn": 65000, "bfd": {"enabled": True, "minRx": 50}}]
    agent, speaker, bfds, _, _ = make(tmp_path, peers=peers)
    tor = A("172.31.0.9")
    assert bfds[0].peers == {BfdPeer(tor, A("172.31.0.1"), min_tx_ms=300, min_rx_ms=50, multiplier=3)}
    deliver(agent, bfds[0], change(tor, "Init", "Up", diag=0))
    deliver(agent, bfds[0], change(tor, "Up", "Down"))
    agent.reconcile()
    assert tor not in {p.address for p in speaker.peers}
    agent.config = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"],
                                 "peers": [{**peers[0], "bfd": {"enabled": False}}]})
    agent.reconcile()  # BFD no longer runs for it: nothing will ever bring it Up, so it is released
    agent.reconcile()
    assert tor in {p.address for p in speaker.peers}
    assert bfds[0].peers == frozenset()


def test_status_and_metrics_show_bfd_per_peer(tmp_path):
    agent, _, bfds, _, _ = make(tmp_path, bfd={"enabled": True})
    bfd = bfds[0]
    deliver(agent, bfd, change(P2, "Init", "Up", diag=0))
    deliver(agent, bfd, change(P3, "Init", "Up", diag=0))
    deliver(agent, bfd, change(P3, "Up", "Down"))
    bfd.states = {P2: BfdSessionState("Up", 0, 900.0, 300.0), P3: BfdSessionState("Down", 1, 900.0, 1000.0)}
    agent.reconcile()
    snapshot = agent.snapshot()
    by_peer = {s.peer: s for s in snapshot.bfd}
    assert by_peer["172.31.0.2"].up and not by_peer["172.31.0.2"].holding_bgp_down
    assert by_peer["172.31.0.3"].holding_bgp_down and by_peer["172.31.0.3"].state_changes == {"Down": 1, "Up": 1}
    assert by_peer["172.31.0.3"].configured_detect_ms == 900.0
    assert snapshot.bfd_process.running and snapshot.bfd_process.pid == 4343
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families(snapshot) for s in f.samples}
    assert samples[("bgpnet_bfd_session_up", (("peer", "172.31.0.2"),))] == 1.0
    assert samples[("bgpnet_bfd_session_up", (("peer", "172.31.0.3"),))] == 0.0
    assert samples[("bgpnet_bfd_session_state_changes_total", (("peer", "172.31.0.3"), ("state", "Down")))] == 1
    assert samples[("bgpnet_bfd_detection_time_seconds", (("kind", "negotiated"), ("peer", "172.31.0.2")))] == 0.9
    assert samples[("bgpnet_bfd_bgp_held_down", (("peer", "172.31.0.3"),))] == 1.0
    assert "held down until BFD is Up" in render(snapshot)


def test_stop_stops_the_bfd_process(tmp_path):
    agent, _, bfds, _, _ = make(tmp_path, bfd={"enabled": True})
    agent.stop()
    assert bfds[0].stopped
