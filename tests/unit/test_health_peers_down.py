"""Liveness when every BGP session stays down (pure: snapshots and the session table, no agent)."""

from __future__ import annotations

from ipaddress import ip_address as A

from bgpnet import health
from bgpnet.config import parse_config
from bgpnet.model import BgpPeer
from bgpnet.snapshot import AgentSnapshot, PeerStatus
from bgpnet.speaker.parser import StateChange
from bgpnet.speaker.sessions import SessionTable


def snapshot(*peers: PeerStatus, now: float = 1000.0, started: float = 0.0, limit: float = 600.0) -> AgentSnapshot:
    return AgentSnapshot(node="n1", version="x", taken_at=now, started_at=started, peers=peers,
                         peers_down_limit_s=limit)


def peer(address: str, state: str, down_since: float) -> PeerStatus:
    return PeerStatus(address=address, asn=64512, state=state, down_since=down_since)


def test_every_peer_down_longer_than_the_limit_fails_liveness():
    verdict = health.liveness(snapshot(peer("10.0.0.2", "connected", 100.0), peer("10.0.0.3", "down", 300.0)))
    assert not verdict.ok
    assert verdict.problems == ("no BGP session established for 700s with any of 2 peers "
                                "(limit 600s, livenessPeersDownAfter)",)


def test_one_established_peer_keeps_the_agent_alive():
    assert health.liveness(snapshot(peer("10.0.0.2", "down", 0.0), peer("10.0.0.3", "established", 0.0))).ok


def test_peers_down_for_less_than_the_limit_are_not_a_liveness_failure():
    assert health.liveness(snapshot(peer("10.0.0.2", "down", 500.0))).ok


def test_an_agent_restart_starts_the_count_again():
    assert health.liveness(snapshot(peer("10.0.0.2", "down", 0.0), started=900.0)).ok


def test_no_peers_or_a_zero_limit_never_fail_liveness():
    assert health.liveness(snapshot()).ok
    assert health.liveness(snapshot(peer("10.0.0.2", "down", 0.0), limit=0)).ok


def test_failed_connection_attempts_do_not_restart_the_down_clock():
    # The real-cluster failure: sessions cycling Connect -> Idle for good. Each attempt moves `since`, not
    # `down_since`, so the bound is reached.
    table, ip = SessionTable(), A("10.0.0.2")
    table.configure([BgpPeer(address=ip, asn=64512, local_address=A("10.0.0.1"), local_asn=64512)], now=10.0)
    table.state_change(StateChange(ip, "up", ""), now=20.0)
    table.state_change(StateChange(ip, "down", "hold timer expired"), now=30.0)
    for t in (40.0, 100.0, 700.0):
        table.state_change(StateChange(ip, "connected", ""), now=t)
        table.state_change(StateChange(ip, "down", "connection refused"), now=t + 1)
    state = table.snapshot()[ip]
    assert (state.since, state.down_since) == (701.0, 30.0)


def test_the_limit_is_configurable_and_on_by_default():
    base = {"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]}
    assert parse_config(base).liveness_peers_down_after == 600.0
    assert parse_config({**base, "livenessPeersDownAfter": 0}).liveness_peers_down_after == 0.0
