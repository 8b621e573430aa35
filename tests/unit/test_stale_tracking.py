"""Graceful restart bookkeeping: the helper's per-peer holds, which session ends qualify, the restarting side's
"synced" verdict, and the optional NotReady-as-gone timer (all pure)."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest

from bgpnet.model import NodeInfo
from bgpnet.node_readiness import gone_nodes, next_change, not_ready_since
from bgpnet.stale import EOR_SETTLE_S, HoldOver, PeerHolds, StaleRoutes, qualifies_for_hold

P, Q = A("172.31.0.2"), A("172.31.0.3")
X, Y, Z = N("10.244.2.0/24"), N("10.244.20.0/24"), N("10.244.3.0/24")
V6 = N("fd00:244:2::/64")
V4F, V6F = "ipv4 unicast", "ipv6 unicast"


@pytest.mark.parametrize("reason, held", [
    ("closing connection", True),  # TCP closed: a restarting (or SIGKILLed) speaker
    ("peer reset, message [closing connection] error[the TCP connection was closed by the remote end]", True),
    # Real ExaBGP 4.2.25 reasons (as its JSON carries them):
    ("peer reset, message (closing connection) error(the TCP connection was closed by the remote end)", True),
    ("peer reset, message (notification sent (4,0)) error(Hold timer expired / )", False),  # a silent peer
    ("peer reset, message (notification received (6,2)) error(Cease / Administrative Shutdown)", False),
])
def test_only_a_plain_connection_close_qualifies_for_a_hold(reason, held):
    assert qualifies_for_hold(reason) is held


def test_a_peer_that_comes_back_keeps_what_it_resends_and_loses_the_rest_shortly_after_end_of_rib():
    holds = PeerHolds()
    holds.hold(P, {X, Y}, now=100, restart_time=30)
    assert holds.holding(P) and holds.stale_count() == 2
    holds.end_of_rib(P, V4F, now=101)  # an End-of-RIB of the old session (not back yet) ends nothing
    assert holds.next_deadline() == 130
    holds.session_up(P, now=105)
    holds.refreshed(P, [X])
    holds.end_of_rib(P, V4F, now=106)
    assert holds.next_deadline() == 106 + EOR_SETTLE_S
    holds.refreshed(P, [Y])  # ExaBGP's End-of-RIB may precede the announcements its API sends a moment later
    assert holds.expired(106 + EOR_SETTLE_S) == [HoldOver(P, V4F, frozenset(), True)]
    assert not holds.holding(P) and holds.next_deadline() is None


def test_a_peer_that_never_comes_back_loses_everything_at_its_restart_time():
    holds = PeerHolds()
    holds.hold(P, {X}, now=100, restart_time=30)
    holds.hold(Q, {Z}, now=110, restart_time=5)
    assert holds.next_deadline() == 115
    assert holds.expired(114.9) == []
    assert holds.expired(115) == [HoldOver(Q, V4F, frozenset({Z}), False)]
    assert holds.expired(130) == [HoldOver(P, V4F, frozenset({X}), False)]
    assert not holds.holding(P)


def test_a_returned_peer_gets_one_more_restart_time_to_send_end_of_rib():
    holds = PeerHolds()
    holds.hold(P, {X, Y}, now=100, restart_time=30)
    holds.session_up(P, now=125)
    holds.refreshed(P, [X])
    assert holds.expired(150) == []
    assert holds.expired(155) == [HoldOver(P, V4F, frozenset({Y}), False)]


def test_flapping_before_coming_back_keeps_the_first_deadline():
    holds = PeerHolds()
    holds.hold(P, {X}, now=100, restart_time=30)
    holds.hold(P, {Y}, now=120, restart_time=30)
    assert holds.next_deadline() == 130 and holds.stale_count() == 2


def test_forget_and_clear_end_holds_without_sweeping():
    holds = PeerHolds()
    holds.hold(P, {X}, now=100, restart_time=30)
    holds.hold(Q, {Z}, now=100, restart_time=30)
    holds.forget(P)
    assert not holds.holding(P) and holds.holding(Q)
    holds.clear()
    assert holds.expired(1e9) == []


def test_end_of_rib_ends_the_hold_of_its_own_family_only():
    holds = PeerHolds()
    holds.hold(P, {X, V6}, now=100, restart_time=30)
    holds.session_up(P, now=105)
    holds.end_of_rib(P, V6F, now=106)
    assert holds.expired(106 + EOR_SETTLE_S) == [HoldOver(P, V6F, frozenset({V6}), True)]
    assert holds.held_families(P) == (V4F,) and holds.next_deadline() == 135
    assert holds.expired(135) == [HoldOver(P, V4F, frozenset({X}), False)]


def test_dropping_a_family_returns_its_stale_prefixes_and_keeps_the_others():
    holds = PeerHolds()
    holds.hold(P, {X, Y, V6}, now=100, restart_time=30)
    assert holds.drop_family(P, V4F) == {X, Y}
    assert holds.drop_family(P, V4F) == frozenset()
    assert holds.held_families(P) == (V6F,) and holds.stale_count() == 1


def test_restarting_side_is_synced_after_every_end_of_rib_or_the_deadline():
    stale = StaleRoutes(awaiting_eor={P, Q}, deadline=130, peers_known=True)
    assert not stale.synced(100)
    stale.awaiting_eor.discard(P)
    stale.awaiting_eor.discard(Q)
    assert stale.synced(100)
    assert not StaleRoutes(deadline=130, peers_known=False).synced(100)  # peers not known yet
    assert StaleRoutes(deadline=130, peers_known=False, awaiting_eor={P}).synced(130)


def node(name, ready):
    return NodeInfo(name, (A("172.31.0.9"),), (), ready=ready)


def test_not_ready_nodes_are_gone_only_after_the_grace_period_and_never_ourselves():
    since = not_ready_since({}, {"a": node("a", False), "b": node("b", True), "me": node("me", False)}, now=10)
    assert since == {"a": 10, "me": 10}
    since = not_ready_since(since, {"a": node("a", False), "me": node("me", False)}, now=20)
    assert since == {"a": 10, "me": 10}  # the clock started when first seen NotReady
    assert gone_nodes(since, now=39, grace=30, own="me") == frozenset()
    assert gone_nodes(since, now=40, grace=30, own="me") == {"a"}
    assert next_change(since, now=20, grace=30, own="me") == 40
    assert gone_nodes(since, now=1e9, grace=0, own="me") == frozenset()  # 0: off (the default)
    assert not_ready_since(since, {"a": node("a", True)}, now=50) == {}  # Ready again: the clock resets
