"""Events on the agent's Node: deduplicated and rate-limited like client-go's EventCorrelator (pure)."""

from __future__ import annotations

from bgpnet import node_events
from bgpnet.node_events import BURST, REFILL_S, EventBook, NodeEvent


def test_a_repeated_event_updates_the_first_one_with_a_count():
    book = EventBook(now=0.0)
    event = node_events.session_down("172.31.0.12", 64512, "hold timer expired")
    first = book.record(event, now=1.0)
    assert (first.count, first.name) == (1, None)
    book.created(first, "node1.bgp-1")
    again = book.record(event, now=5.0)
    assert (again.count, again.first_seen, again.last_seen, again.name) == (2, 1.0, 5.0, "node1.bgp-1")


def test_different_messages_are_different_events():
    book = EventBook(now=0.0)
    a = book.record(node_events.session_up("172.31.0.12", 64512), now=1.0)
    b = book.record(node_events.session_up("172.31.0.13", 64512), now=1.0)
    assert a.count == b.count == 1


def test_the_spam_filter_drops_past_the_burst_and_refills_slowly():
    book = EventBook(now=0.0)
    writes = [book.record(NodeEvent("Warning", "X", f"m{i}"), now=0.0) for i in range(BURST + 3)]
    assert sum(w is not None for w in writes) == BURST
    assert book.dropped == 3
    assert book.record(NodeEvent("Warning", "X", "late"), now=REFILL_S / 2) is None
    assert book.record(NodeEvent("Warning", "X", "later"), now=REFILL_S * 1.5) is not None


def test_a_forgotten_event_is_created_again():
    book = EventBook(now=0.0)
    event = node_events.config_error("peers[0].asn: must be an integer AS number")
    write = book.record(event, now=1.0)
    book.created(write, "n.1")
    book.forget(write)
    assert book.record(event, now=2.0).name is None


def test_refused_routes_make_one_event_per_peer_and_reason_not_per_prefix():
    book = EventBook(now=0.0)
    for _ in range(5):
        write = book.record(node_events.route_refused("172.31.0.1", "pod-cidr-more-specific"), now=1.0)
    assert write.count == 5


def test_messages_are_cut_to_what_the_api_server_accepts():
    write = EventBook(now=0.0).record(NodeEvent("Warning", "X", "x" * 5000), now=0.0)
    assert len(write.event.message) == node_events.MESSAGE_LIMIT
