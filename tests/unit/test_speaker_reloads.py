"""When the speaker makes ExaBGP reload (bgpnet.speaker.reloads, pure)."""

from ipaddress import ip_address as A

from bgpnet.model import BgpPeer
from bgpnet.speaker.reloads import SETTLE, ReloadBook

P2 = BgpPeer(A("172.31.0.12"), 64512, A("172.31.0.11"), 64512, passive=True)
P3 = BgpPeer(A("172.31.0.13"), 64512, A("172.31.0.11"), 64512, passive=True)
P3_CHANGED = BgpPeer(A("172.31.0.13"), 64512, A("172.31.0.11"), 64512, hold_time=30, passive=True)


def test_a_change_reloads_at_once_and_its_neighbors_are_fed_once_it_settled():
    book = ReloadBook()
    decision = book.decide(100.0, frozenset({P2, P3}), frozenset({P2}))
    assert decision.load == {P2, P3} and decision.wake_in == SETTLE
    assert book.decide(100.5, frozenset({P2, P3}), frozenset({P2, P3})).present is None
    assert book.decide(100.0 + SETTLE, frozenset({P2, P3}), frozenset({P2, P3})).present == {P2.address, P3.address}


def test_reloads_are_spaced_by_settle():
    book = ReloadBook()
    book.decide(100.0, frozenset({P2}), frozenset())
    decision = book.decide(100.2, frozenset({P2, P3}), frozenset({P2}))
    assert decision.load is None and abs(decision.wake_in - (SETTLE - 0.2)) < 1e-9
    assert book.decide(100.0 + SETTLE, frozenset({P2, P3}), frozenset({P2})).load == {P2, P3}


def test_a_neighbor_removed_and_back_unchanged_before_a_reload_is_removed_first_then_added():
    """Otherwise ExaBGP never sees the removal: the session and our old announcements carry on while the agent
    dropped the peer's routes (a Node deleted and registered again)."""
    book = ReloadBook()
    book.decide(100.0, frozenset({P2, P3}), frozenset())
    book.removed_from_config({P3.address})         # Node 3 deleted ...
    first = book.decide(100.5, frozenset({P2, P3}), frozenset({P2, P3}))  # ... and back before the next reload
    assert first.load is None
    removal = book.decide(100.0 + SETTLE, frozenset({P2, P3}), frozenset({P2, P3}))
    assert removal.load == {P2}
    assert book.decide(100.0 + SETTLE, frozenset({P2, P3}), frozenset({P2})).load is None  # spaced
    assert book.decide(100.0 + 2 * SETTLE, frozenset({P2, P3}), frozenset({P2})).load == {P2, P3}


def test_a_changed_neighbor_is_left_to_exabgp_to_re_establish():
    book = ReloadBook()
    book.decide(100.0, frozenset({P2, P3}), frozenset())
    book.removed_from_config({P3.address})
    decision = book.decide(100.0 + SETTLE, frozenset({P2, P3_CHANGED}), frozenset({P2, P3}))
    assert decision.load == {P2, P3_CHANGED}


def test_nothing_to_do_when_exabgp_has_what_is_desired():
    decision = ReloadBook().decide(100.0, frozenset({P2}), frozenset({P2}))
    assert decision.load is None and decision.wake_in is None and decision.present == {P2.address}
