"""PeerLifecycle on its own: graceful restart holds, drops, max-prefix teardowns and the start-up stale period,
against a real RIB and policy (no agent, no threads, an explicit clock)."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.config import TEARDOWN
from bgpnet.model import KernelRoute, LearnedRoute
from bgpnet.peer_lifecycle import PeerLifecycle
from bgpnet.policy import ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib
from bgpnet.speaker.events import EndOfRib, GracefulRestart, PeerOpen
from bgpnet.stale import EOR_SETTLE_S

R = Prefix.parse
P2, P3 = A("172.31.0.2"), A("172.31.0.3")
POLICY = ImportPolicy(cluster_cidrs=(N("10.244.0.0/16"), N("fd00:244::/48")), own_cidrs=(N("10.244.1.0/24"),),
                      own_asn=64512)
CLOSE = "peer reset, message (closing connection) error(the TCP connection was closed by the remote end)"
NOTIFICATION = "peer reset, message (notification sent (4,0)) error(Hold timer expired)"


def policy_for(_peer):
    return POLICY


def rib_with(peer, *prefixes):
    """The peer's routes, next hop its own address (IPv4) or fd00::2 (IPv6, as a multiprotocol peer sends)."""
    rib = Rib()
    rib.update(peer, [LearnedRoute(peer=peer, prefix=R(p), next_hop=peer if ":" not in p else A("fd00::2"))
                      for p in prefixes], (), POLICY)
    rib.take_changes()
    assert len(rib.routes) == len(prefixes)
    return rib


def lifecycle(**families):
    peers = PeerLifecycle(graceful_restart=True, startup_grace_period=10)
    rib = rib_with(P2, "10.244.2.0/24", "fd00:244:0:2::/64")
    peers.opened(PeerOpen(P2, GracefulRestart(30, False, families)), rib, policy_for)
    peers.established(P2, 100.0)
    return peers, rib


def test_a_tcp_close_holds_the_families_the_peer_preserves_and_drops_the_others_at_once():
    peers, rib = lifecycle(**{"ipv4 unicast": True})
    peers.went_down(P2, CLOSE, configured=True, rib=rib, policy_for=policy_for, now=100.0)
    assert set(rib.routes) == {R("10.244.2.0/24")}  # IPv6 was not in the capability: swept now
    assert peers.next_deadline() == 130.0  # its Restart Time
    peers.sweep_expired_holds(rib, policy_for, 129.0)
    assert set(rib.routes) == {R("10.244.2.0/24")}
    peers.sweep_expired_holds(rib, policy_for, 130.0)
    assert rib.routes == {}


def test_a_notification_ends_graceful_restart_and_the_routes_go_at_once():
    peers, rib = lifecycle(**{"ipv4 unicast": True, "ipv6 unicast": True})
    peers.went_down(P2, NOTIFICATION, configured=True, rib=rib, policy_for=policy_for, now=100.0)
    assert rib.routes == {}
    assert peers.next_deadline() is None


def test_an_unconfigured_peer_is_not_helped():
    peers, rib = lifecycle(**{"ipv4 unicast": True})
    peers.went_down(P2, CLOSE, configured=False, rib=rib, policy_for=policy_for, now=100.0)
    assert rib.routes == {}


def test_what_a_restarting_peer_re_sends_stays_and_the_rest_goes_after_its_end_of_rib():
    peers, rib = lifecycle(**{"ipv4 unicast": True, "ipv6 unicast": True})
    peers.went_down(P2, CLOSE, configured=True, rib=rib, policy_for=policy_for, now=100.0)
    peers.opened(PeerOpen(P2, GracefulRestart(30, True, {"ipv4 unicast": True, "ipv6 unicast": True})), rib,
                 policy_for)
    peers.established(P2, 105.0)
    peers.received(P2, [R("10.244.2.0/24")])
    for family in ("ipv4 unicast", "ipv6 unicast"):
        peers.end_of_rib(EndOfRib(P2, family), 106.0)
    peers.sweep_expired_holds(rib, policy_for, 106.0 + EOR_SETTLE_S)
    assert set(rib.routes) == {R("10.244.2.0/24")}


def test_an_open_without_forwarding_state_ends_the_hold_of_that_family():
    peers, rib = lifecycle(**{"ipv4 unicast": True, "ipv6 unicast": True})
    peers.went_down(P2, CLOSE, configured=True, rib=rib, policy_for=policy_for, now=100.0)
    peers.opened(PeerOpen(P2, GracefulRestart(30, True, {"ipv4 unicast": False, "ipv6 unicast": True})), rib,
                 policy_for)
    assert set(rib.routes) == {R("fd00:244:0:2::/64")}


def test_max_prefix_teardown_disables_the_peer_until_its_restart_time_is_over():
    limited = ImportPolicy(cluster_cidrs=POLICY.cluster_cidrs, own_cidrs=POLICY.own_cidrs, own_asn=64512,
                           max_prefixes=1, max_prefix_action=TEARDOWN, restart_after=60)
    peers, rib = PeerLifecycle(graceful_restart=True, startup_grace_period=10), Rib()
    rib.update(P3, [LearnedRoute(peer=P3, prefix=R(p), next_hop=P3) for p in ("10.244.3.0/24", "10.244.4.0/24")],
               (), limited)
    peers.check_prefix_limit(P3, limited, rib, 100.0)
    assert peers.disabled(P3)
    assert peers.expire_disabled(159.0) == {P3}
    assert peers.next_deadline() == 160.0
    assert peers.expire_disabled(160.0) == frozenset()
    assert not peers.disabled(P3)


def test_leftovers_stay_until_every_peer_known_at_the_first_round_has_sent_end_of_rib():
    peers = PeerLifecycle(graceful_restart=True, startup_grace_period=10)
    left = {R("10.244.2.0/24"): KernelRoute(R("10.244.2.0/24"), (P2,))}
    peers.adopt_leftovers(dict(left), 100.0)
    assert not peers.synced(101.0)  # nobody asked for End-of-RIB yet: not "everyone has re-sent"
    peers.peers_known({P2, P3})
    peers.end_of_rib(EndOfRib(P2, "ipv4 unicast"), 102.0)
    assert peers.stale_for_round(Rib(), 102.0) == (left, False)
    peers.end_of_rib(EndOfRib(P3, "ipv4 unicast"), 103.0)
    assert peers.synced(103.0)
    assert peers.stale_for_round(Rib(), 103.0) == ({}, True)  # over: what was not re-learned goes now
    assert peers.stale_for_round(Rib(), 104.0) == ({}, False)


def test_the_stale_period_ends_at_the_grace_period_even_without_end_of_rib():
    peers = PeerLifecycle(graceful_restart=True, startup_grace_period=10)
    peers.adopt_leftovers({R("10.244.2.0/24"): KernelRoute(R("10.244.2.0/24"), (P2,))}, 100.0)
    peers.peers_known({P2})
    assert peers.next_deadline() == 110.0
    assert peers.stale_for_round(Rib(), 110.0) == ({}, True)


def test_a_forgotten_peer_is_not_waited_for_and_its_stale_paths_go():
    peers = PeerLifecycle(graceful_restart=True, startup_grace_period=10)
    route = KernelRoute(R("10.244.2.0/24"), (P2, P3))
    peers.adopt_leftovers({route.prefix: route}, 100.0)
    peers.peers_known({P2, P3})
    peers.forget({P2})
    assert peers.stale.awaiting_eor == {P3}
    assert peers.stale.routes == {route.prefix: KernelRoute(route.prefix, (P3,))}
