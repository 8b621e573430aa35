"""Session table: raw ExaBGP state messages → PeerUp/PeerDown, including connection collisions."""

import ipaddress

from bgpnet.model import BgpPeer
from bgpnet.speaker.events import PeerDown, PeerUp, RoutesReceived
from bgpnet.speaker.parser import StateChange
from bgpnet.speaker.sessions import SessionTable

ip, net = ipaddress.ip_address, ipaddress.ip_network
PEER = BgpPeer(ip("10.0.0.2"), 64512, ip("10.0.0.1"), 64512)


def table():
    t = SessionTable()
    t.configure([PEER], now=1.0)
    return t


def test_collision_loser_going_down_before_established_is_not_a_peer_down():
    t = table()
    assert t.state_change(StateChange(PEER.address, "connected"), 2.0) is None
    assert t.state_change(StateChange(PEER.address, "down", "closing outgoing connection"), 2.1) is None
    assert t.snapshot()[PEER.address].state == "down"


def test_up_then_down_gives_peer_up_then_peer_down_with_reason_and_counters():
    t = table()
    t.state_change(StateChange(PEER.address, "connected"), 2.0)
    assert t.state_change(StateChange(PEER.address, "up"), 2.5) == PeerUp(PEER.address)
    # A colliding second connection reported as "connected" does not demote an established session.
    assert t.state_change(StateChange(PEER.address, "connected"), 2.6) is None
    assert t.snapshot()[PEER.address].state == "established"
    assert t.snapshot()[PEER.address].since == 2.5
    t.routes(RoutesReceived(PEER.address, (), (net("10.1.0.0/24"),)))
    assert t.state_change(StateChange(PEER.address, "down", "hold timer"), 3.0) == PeerDown(PEER.address,
                                                                                          "hold timer")
    state = t.snapshot()[PEER.address]
    assert (state.state, state.established_count, state.updates_received, state.withdrawals_received) == (
        "down", 1, 1, 1)


def test_speaker_death_downs_only_established_sessions_and_unknown_peers_are_ignored():
    t = table()
    assert t.state_change(StateChange(ip("10.9.9.9"), "up"), 2.0) is None
    assert t.all_down("ExaBGP exited", 3.0) == []
    t.state_change(StateChange(PEER.address, "up"), 4.0)
    assert t.all_down("ExaBGP exited (-9)", 5.0) == [PeerDown(PEER.address, "ExaBGP exited (-9)", local=True)]


def test_reconfigure_keeps_state_of_kept_peers_and_forgets_removed_ones():
    t = table()
    t.state_change(StateChange(PEER.address, "up"), 2.0)
    other = BgpPeer(ip("10.0.0.3"), 64512, ip("10.0.0.1"), 64512)
    t.configure([PEER, other], now=3.0)
    assert t.snapshot()[PEER.address].state == "established"
    assert t.snapshot()[other.address].state == "idle"
    t.configure([other], now=4.0)
    assert list(t.snapshot()) == [other.address]
