"""The agent as graceful restart helper, NetworkUnavailable reporting and NotReady-as-gone, against the fakes
of tests/unit/test_agent.py (real RIB, policy and stale bookkeeping; fake speaker, kernel and clock)."""

from ipaddress import ip_address as A

from bgpnet.agent import Agent
from bgpnet.config import parse_config
from bgpnet.model import LearnedRoute, NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.speaker.events import EndOfRib, GracefulRestart, PeerDown, PeerOpen, PeerUp, RoutesReceived
from bgpnet.stale import EOR_SETTLE_S
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
C2, C3, C20 = R("10.244.2.0/24"), R("10.244.3.0/24"), R("10.244.20.0/24")
V6 = R("fd00:244:0:2::/64")
V4F, V6F = "ipv4 unicast", "ipv6 unicast"


def gr(restart_time, **families):
    """A graceful restart capability; families as ipv4=True (Forwarding State set) / ipv6=False."""
    return GracefulRestart(restart_time, False, {f"{name} unicast": f for name, f in families.items()})


GR6 = gr(6, ipv4=True)  # BIRD's default: its session's family, forwarding preserved


def make(tmp_path, **config):
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd00:244::/48"], "startupGracePeriod": 10,
                        "routeSyncPeriod": 60, **config})
    sources, speakers, reports = [], [], []
    table, clock = FakeRouteTable(), Clock()
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=table, clock=clock, set_network_available=lambda: reports.append(clock.now))
    agent.start()
    sources[0].on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speaker = speakers[0]
    for peer, prefixes in ((P2, ("10.244.2.0/24", "10.244.20.0/24")), (P3, ("10.244.3.0/24",))):
        speaker.on_event(PeerOpen(peer, GR6))
        speaker.on_event(PeerUp(peer))
        speaker.on_event(RoutesReceived(peer, tuple(learned(str(peer), p) for p in prefixes), ()))
        speaker.on_event(EndOfRib(peer, "ipv4 unicast"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}
    return agent, sources[0], speaker, table, clock, reports


def test_restarting_peer_keeps_its_routes_and_what_it_does_not_resend_goes_at_its_end_of_rib(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    speaker.on_event(PeerDown(P2, "closing connection"))
    clock.now += 5
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}  # held for its 6 s Restart Time
    speaker.on_event(PeerOpen(P2, GR6))
    speaker.on_event(PeerUp(P2))
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}  # still waiting for its End-of-RIB
    speaker.on_event(EndOfRib(P2, "ipv4 unicast"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}  # swept EOR_SETTLE_S after End-of-RIB
    clock.now += EOR_SETTLE_S
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}


def test_a_peer_that_does_not_return_is_swept_at_its_restart_time(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    speaker.on_event(PeerDown(P3, "closing connection"))
    clock.now += 5.9
    agent.reconcile()
    assert C3 in table.kernel
    assert agent._next_timeout() <= 0.1 + 1e-9  # the loop wakes for the deadline, not a minute later
    clock.now += 0.1
    agent.reconcile()
    assert set(table.kernel) == {C2, C20}


def test_a_notification_ends_graceful_restart_at_once(tmp_path):
    agent, _, speaker, table, _, _ = make(tmp_path)
    # Our hold timer expired: a dead node, not a restarting one.
    speaker.on_event(PeerDown(P3, "peer reset, message (notification sent (4,0)) error(Hold timer expired / )"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20}


def test_a_peer_without_the_capability_or_with_gr_disabled_is_not_helped(tmp_path):
    agent, _, speaker, table, _, _ = make(tmp_path)
    speaker.on_event(PeerOpen(P3, None))
    speaker.on_event(PeerDown(P3, "closing connection"))
    agent.reconcile()
    assert C3 not in table.kernel
    agent, _, speaker, table, _, _ = make(tmp_path, gracefulRestart={"enabled": False})
    speaker.on_event(PeerDown(P3, "closing connection"))
    agent.reconcile()
    assert C3 not in table.kernel


def test_a_node_deleted_during_its_restart_loses_its_routes_at_once(tmp_path):
    agent, source, speaker, table, _, _ = make(tmp_path)
    speaker.on_event(PeerDown(P3, "closing connection"))
    agent.reconcile()
    assert C3 in table.kernel
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    assert C3 not in table.kernel


def test_network_unavailable_is_reported_once_after_every_peer_sent_end_of_rib(tmp_path):
    agent, _, _, _, _, reports = make(tmp_path)
    assert len(reports) == 1
    agent.reconcile()
    assert len(reports) == 1


def test_network_unavailable_waits_for_end_of_rib_and_retries_a_failed_report(tmp_path):
    calls = []

    def flaky():
        calls.append(clock.now)
        if len(calls) == 1:
            raise ConnectionError("API away")

    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd00:244::/48"], "startupGracePeriod": 10})
    sources, speakers, table, clock = [], [], FakeRouteTable(), Clock()
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path, make_node_source=lambda cb: sources.append(
        FakeNodeSource(cb)) or sources[-1], make_speaker=lambda rid, cb: speakers.append(
        deliver_at_once(agent, FakeSpeaker(rid, cb))) or speakers[-1], route_table=table, clock=clock,
                  set_network_available=flaky)
    agent.start()
    sources[0].on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    assert calls == []  # n2 has not sent End-of-RIB yet
    speakers[0].on_event(EndOfRib(P2, "ipv4 unicast"))
    agent.reconcile()
    assert calls == [1000.0]
    clock.now += 1
    agent.reconcile()
    assert calls == [1000.0]  # retried after 5 s, not on every round
    clock.now += 4
    agent.reconcile()
    assert calls == [1000.0, 1005.0]


def test_not_ready_node_is_dropped_only_when_enabled_and_after_the_grace_period(tmp_path):
    sick = NodeInfo("n3", N3.internal_ips, N3.pod_cidrs, ready=False)
    agent, source, _, table, clock, _ = make(tmp_path)
    source.on_change({"n1": N1, "n2": N2, "n3": sick})
    clock.now += 3600
    agent.reconcile()
    assert C3 in table.kernel  # off by default
    agent, source, _, table, clock, _ = make(tmp_path, notReadyGracePeriod=40)
    source.on_change({"n1": N1, "n2": N2, "n3": sick})
    clock.now += 39
    agent.reconcile()
    assert C3 in table.kernel
    clock.now += 1
    agent.reconcile()
    assert C3 not in table.kernel
    source.on_change({"n1": N1, "n2": N2, "n3": N3})  # Ready again: peered again, its routes come back
    agent.reconcile()
    assert P3 in {p.address for p in agent.intent().peers}


def _reopen(speaker, peer, graceful):
    speaker.on_event(PeerOpen(peer, graceful))
    speaker.on_event(PeerUp(peer))


def test_an_frr_like_capability_without_families_retains_nothing(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    _reopen(speaker, P2, gr(120))  # FRR's default: Restart Time 120 s, no address family
    speaker.on_event(PeerDown(P2, "closing connection"))
    agent.reconcile()
    assert set(table.kernel) == {C3}  # both of P2's routes gone at once, not after 120 s


def test_routes_of_a_family_not_in_the_capability_go_at_once_on_session_drop(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    _reopen(speaker, P2, gr(6, ipv6=True))  # lists IPv6 only
    speaker.on_event(RoutesReceived(P2, (LearnedRoute(peer=P2, prefix=V6, next_hop=A("fd00:31::2")),), ()))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3, V6}
    speaker.on_event(PeerDown(P2, "closing connection"))
    agent.reconcile()
    assert set(table.kernel) == {C3, V6}  # IPv4 gone at once, IPv6 held


def test_forwarding_state_clear_in_the_new_open_drops_that_familys_stale_routes_at_once(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    _reopen(speaker, P2, gr(6, ipv4=True, ipv6=True))
    speaker.on_event(RoutesReceived(P2, (LearnedRoute(peer=P2, prefix=V6, next_hop=A("fd00:31::2")),), ()))
    speaker.on_event(PeerDown(P2, "closing connection"))
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3, V6}
    speaker.on_event(PeerOpen(P2, gr(6, ipv4=False, ipv6=True)))  # did not preserve IPv4 forwarding
    agent.reconcile()
    assert set(table.kernel) == {C3, V6}


def test_a_new_open_without_the_capability_drops_every_stale_route(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    speaker.on_event(PeerDown(P2, "closing connection"))
    speaker.on_event(PeerOpen(P2, None))
    agent.reconcile()
    assert set(table.kernel) == {C3}


def test_end_of_rib_sweeps_its_own_family_only(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    _reopen(speaker, P2, gr(6, ipv4=True, ipv6=True))
    speaker.on_event(RoutesReceived(P2, (LearnedRoute(peer=P2, prefix=V6, next_hop=A("fd00:31::2")),), ()))
    speaker.on_event(PeerDown(P2, "closing connection"))
    _reopen(speaker, P2, gr(6, ipv4=True, ipv6=True))
    speaker.on_event(EndOfRib(P2, V6F))  # IPv6 re-sent nothing; IPv4 still to come
    clock.now += EOR_SETTLE_S
    agent.reconcile()
    assert set(table.kernel) == {C2, C20, C3}
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    speaker.on_event(EndOfRib(P2, V4F))
    clock.now += EOR_SETTLE_S
    agent.reconcile()
    assert set(table.kernel) == {C2, C3}


def test_a_malformed_open_is_counted_and_its_capability_not_believed(tmp_path):
    agent, _, speaker, table, clock, _ = make(tmp_path)
    before = agent.counters.bad_speaker_messages
    speaker.on_event(PeerOpen(P2, None, malformed="optional parameter header overruns the parameters"))
    assert agent.counters.bad_speaker_messages == before + 1
    speaker.on_event(PeerDown(P2, "closing connection"))
    agent.reconcile()
    assert set(table.kernel) == {C3}
