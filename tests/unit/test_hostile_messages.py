"""The hostile peer's message encoder (tests/privileged/hostile_messages.py) and its case table: well-formed
messages equal the independent RFC encoder's, forced fields land where RFC 4271 puts them, and every case's
prefixes are its own and inside the cluster CIDR but outside every Node's pod CIDR."""

from __future__ import annotations

import ipaddress

import pytest

from tests.privileged import hostile_messages as m
from tests.privileged.hostile_cases import UPDATE_CASES, Prefixes, case_index
from tests.unit import bgp_encode


def test_announce_equals_the_rfc_encoder():
    ours = m.announce(["10.244.77.0/24", "10.244.78.128/25"], 64666, "172.21.1.1")
    theirs = bgp_encode.update(nlri=["10.244.77.0/24", "10.244.78.128/25"], next_hop="172.21.1.1",
                               path=[(2, [64666])])
    assert ours == theirs


def test_withdraw_is_withdrawn_routes_only():
    # Withdrawn Routes Length 4, 10.244.77.0/24, Total Path Attribute Length 0, no NLRI (RFC 4271 §4.3).
    assert m.withdraw(["10.244.77.0/24"]) == bytes.fromhex("0004" "180af44d" "0000")


def test_open_equals_the_rfc_encoder():
    caps = m.multiprotocol(1, 1) + m.four_octet_as(64666)
    assert m.open_body(64666, "10.254.0.9", 9, [caps]) == bgp_encode.open_body(64666, "10.254.0.9", caps, hold=9)


def test_open_with_a_4_octet_asn_carries_as_trans():
    assert m.open_body(4200000000, "10.0.0.1", 9)[1:3] == (23456).to_bytes(2, "big")


def test_frame_writes_the_true_length_unless_forced():
    assert m.keepalive() == b"\xff" * 16 + b"\x00\x13\x04"
    assert m.frame(m.KEEPALIVE, length=18)[16:18] == b"\x00\x12"
    assert m.frame(7, marker=b"\x00" * 16)[:16] == b"\x00" * 16


def test_update_body_forced_length_fields():
    body = m.update_body(withdrawn=b"\x18\x0a\xf4\x4d", withdrawn_length=300, attributes=m.origin(),
                         attributes_length=99, announced=b"\x18\x0a\xf4\x4e")
    assert body[:2] == (300).to_bytes(2, "big")
    assert body[6:8] == (99).to_bytes(2, "big")
    assert body[8:12] == m.origin()


def test_attribute_with_a_long_value_gets_the_extended_length_flag():
    value = bytes(300)
    assert m.attr(m.COMMUNITIES, value, m.OPTIONAL_TRANSITIVE)[:4] == bytes([0xD0, 8, 1, 44])


def test_split_messages_keeps_an_incomplete_tail():
    stream = m.keepalive() + m.notification(6, 4) + m.keepalive()[:7]
    messages, rest = m.split_messages(stream)
    assert messages == [(m.KEEPALIVE, b""), (m.NOTIFICATION, b"\x06\x04")]
    assert rest == m.keepalive()[:7]


def test_split_messages_refuses_a_bad_marker():
    with pytest.raises(ValueError, match="marker"):
        m.split_messages(b"\x00" * 19)


def test_received_describes_a_notification_and_a_close():
    assert m.Received(m.NOTIFICATION, b"\x03\x0a").describe() == "NOTIFICATION 3/10"
    assert m.Received(m.NOTIFICATION, b"\x06\x04").error == (6, 4)
    assert m.Received(None).describe() == "TCP close"


def test_every_case_has_its_own_prefixes_inside_the_cluster_and_outside_node_cidrs():
    seen: set[str] = set()
    cluster = ipaddress.ip_network("10.244.0.0/16")
    nodes = [ipaddress.ip_network("10.244.1.0/24"), ipaddress.ip_network("10.244.2.0/24")]
    for case in UPDATE_CASES:
        p = Prefixes.for_case(case_index(case), 64666, "172.21.1.1")
        mine = {p.again, p.kept, p.fresh, p.sentinel, p.stray}
        assert not mine & seen, case.name
        seen |= mine
        for text in mine:
            net = ipaddress.ip_network(text)
            assert net.subnet_of(cluster) and not any(net.overlaps(n) for n in nodes), (case.name, text)


@pytest.mark.parametrize("case", UPDATE_CASES, ids=str)
def test_every_case_fits_one_message(case):
    body = case.build(Prefixes.for_case(case_index(case), 64666, "172.21.1.1"))
    assert 4 <= len(body) <= m.MAX_MESSAGE - m.HEADER_LENGTH
