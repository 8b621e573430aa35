"""The RFC 7606 verdict of the UPDATE decoder, one case per class of malformed message (pure).

Each case is a message body built from the RFCs (tests/unit/bgp_encode.py plus raw attributes here), with the
action bgpnet must take and, for the actions that keep the session, exactly which prefixes it announces and
withdraws. The baseline message re-announces 10.244.9.0/24, so "dropped whole" (nothing withdrawn) and
"treated as withdraw" (10.244.9.0/24 withdrawn) are told apart.
"""

from __future__ import annotations

import ipaddress

import pytest
from bgp_encode import as_path, attribute, prefix_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpnet.speaker.events import EndOfRib, RoutesReceived, SessionReset
from bgpnet.speaker.wire import decode_update

PEER = ipaddress.ip_address("172.20.1.1")
N = ipaddress.ip_network

ORIGIN = attribute(1, b"\x00")
PATH = attribute(2, as_path([(2, [65100, 65009])]))
HOP = attribute(3, bytes([172, 20, 1, 1]))
CLEAN = ORIGIN + PATH + HOP


def body(attrs: bytes, nlri: list[str] = ("10.244.9.0/24",), withdrawn: list[str] = (), raw_nlri: bytes = b"",
         raw_withdrawn: bytes = b"") -> bytes:
    w = b"".join(prefix_bytes(p) for p in withdrawn) + raw_withdrawn
    return (len(w).to_bytes(2, "big") + w + len(attrs).to_bytes(2, "big") + attrs
            + b"".join(prefix_bytes(p) for p in nlri) + raw_nlri)


def mp_reach(prefixes: list[str], hop: bytes = b"\xfd" + b"\0" * 14 + b"\x01", afi: int = 2, safi: int = 1,
             reserved: int = 0, flags: int = 0x80) -> bytes:
    value = afi.to_bytes(2, "big") + bytes([safi, len(hop)]) + hop + bytes([reserved])
    return attribute(14, value + b"".join(prefix_bytes(p) for p in prefixes), flags)


def mp_unreach(prefixes: list[str], afi: int = 2, safi: int = 1) -> bytes:
    return attribute(15, afi.to_bytes(2, "big") + bytes([safi]) + b"".join(prefix_bytes(p) for p in prefixes),
                     0x80)


TAW, DISCARD, RESET = "treat-as-withdraw", "attribute-discard", "session-reset"
V6 = "fd10:244:9::/64"

# (name, body, action or None, announced prefixes, withdrawn prefixes)
CASES = [
    ("clean", body(CLEAN), None, ["10.244.9.0/24"], []),
    ("host bits are masked, not fatal", body(CLEAN, nlri=[], raw_nlri=b"\x17\x0a\xf4\x09"), None,
     ["10.244.8.0/23"], []),
    ("withdrawn length overruns", b"\x00\x40\x00\x00", RESET, [], []),
    ("attribute length overruns the message", b"\x00\x00\x00\x40" + CLEAN, RESET, [], []),
    ("prefix length 33", body(CLEAN, nlri=[], raw_nlri=b"\x21\x0a\xf4\x09\x00\x00"), RESET, [], []),
    ("prefix overruns its field", body(CLEAN, nlri=[], raw_nlri=b"\x18\x0a\xf4"), RESET, [], []),
    ("withdrawn prefix overruns", body(CLEAN, raw_withdrawn=b"\x20\x0a"), RESET, [], []),
    ("attribute overruns the attributes", body(CLEAN + b"\x40\x08\x09\x00"), TAW, [], ["10.244.9.0/24"]),
    ("truncated attribute header", body(CLEAN + b"\x40"), TAW, [], ["10.244.9.0/24"]),
    ("attribute framing error and no NLRI", body(CLEAN + b"\x40\x08\x09", nlri=[]), RESET, [], []),
    ("ORIGIN value 5", body(attribute(1, b"\x05") + PATH + HOP), TAW, [], ["10.244.9.0/24"]),
    ("ORIGIN of length 0", body(attribute(1, b"") + PATH + HOP), TAW, [], ["10.244.9.0/24"]),
    ("ORIGIN of length 2", body(attribute(1, b"\0\0") + PATH + HOP), TAW, [], ["10.244.9.0/24"]),
    ("ORIGIN missing", body(PATH + HOP), TAW, [], ["10.244.9.0/24"]),
    ("AS_PATH missing", body(ORIGIN + HOP), TAW, [], ["10.244.9.0/24"]),
    ("AS_PATH segment type 5", body(ORIGIN + attribute(2, as_path([(5, [65100])])) + HOP), TAW, [],
     ["10.244.9.0/24"]),
    ("AS_PATH segment of 0 ASNs", body(ORIGIN + attribute(2, b"\x02\x00") + HOP), TAW, [], ["10.244.9.0/24"]),
    ("AS_PATH segment count overruns", body(ORIGIN + attribute(2, b"\x02\x03" + (65100).to_bytes(4, "big"))
                                            + HOP), TAW, [], ["10.244.9.0/24"]),
    ("AS_PATH trailing octet", body(ORIGIN + attribute(2, as_path([(2, [65100])]) + b"\x02") + HOP), TAW, [],
     ["10.244.9.0/24"]),
    ("AS 0 in AS_PATH (RFC 7607)", body(ORIGIN + attribute(2, as_path([(2, [65100, 0])])) + HOP), TAW, [],
     ["10.244.9.0/24"]),
    ("NEXT_HOP of length 0", body(ORIGIN + PATH + attribute(3, b"")), TAW, [], ["10.244.9.0/24"]),
    ("NEXT_HOP of length 5", body(ORIGIN + PATH + attribute(3, b"\xac\x14\x01\x01\x00")), TAW, [],
     ["10.244.9.0/24"]),
    ("NEXT_HOP missing", body(ORIGIN + PATH), TAW, [], ["10.244.9.0/24"]),
    ("NEXT_HOP 0.0.0.0", body(ORIGIN + PATH + attribute(3, b"\0\0\0\0")), TAW, [], ["10.244.9.0/24"]),
    ("NEXT_HOP multicast", body(ORIGIN + PATH + attribute(3, b"\xe0\0\0\x05")), TAW, [], ["10.244.9.0/24"]),
    ("NEXT_HOP loopback", body(ORIGIN + PATH + attribute(3, b"\x7f\0\0\x01")), TAW, [], ["10.244.9.0/24"]),
    ("MED of 3 octets", body(CLEAN + attribute(4, b"\0\0\0", 0x80)), TAW, [], ["10.244.9.0/24"]),
    ("LOCAL_PREF of 0 octets", body(CLEAN + attribute(5, b"")), TAW, [], ["10.244.9.0/24"]),
    ("ATOMIC_AGGREGATE of 1 octet", body(CLEAN + attribute(6, b"\0")), DISCARD, ["10.244.9.0/24"], []),
    ("AGGREGATOR of 7 octets", body(CLEAN + attribute(7, b"\0" * 7, 0xC0)), DISCARD, ["10.244.9.0/24"], []),
    ("AGGREGATOR with AS 0", body(CLEAN + attribute(7, b"\0" * 4 + b"\x0a\0\0\x01", 0xC0)), DISCARD,
     ["10.244.9.0/24"], []),
    ("AS4_AGGREGATOR of 6 octets", body(CLEAN + attribute(18, b"\1" * 6, 0xC0)), DISCARD, ["10.244.9.0/24"], []),
    ("AGGREGATOR of 3 octets (ExaBGP resets)", body(CLEAN + attribute(7, b"\1" * 3, 0xC0)), RESET, [], []),
    ("COMMUNITIES of length 0", body(CLEAN + attribute(8, b"", 0xC0)), TAW, [], ["10.244.9.0/24"]),
    ("COMMUNITIES of 5 octets", body(CLEAN + attribute(8, b"\0" * 5, 0xC0)), TAW, [], ["10.244.9.0/24"]),
    ("LARGE_COMMUNITY of 13 octets", body(CLEAN + attribute(32, b"\0" * 13, 0xC0)), TAW, [], ["10.244.9.0/24"]),
    ("LARGE_COMMUNITY of length 0", body(CLEAN + attribute(32, b"", 0xC0)), TAW, [], ["10.244.9.0/24"]),
    ("EXTENDED_COMMUNITIES of 7 octets", body(CLEAN + attribute(16, b"\0" * 7, 0xC0)), TAW, [],
     ["10.244.9.0/24"]),
    ("ORIGINATOR_ID of 5 octets", body(CLEAN + attribute(9, b"\0" * 5, 0x80)), TAW, [], ["10.244.9.0/24"]),
    ("CLUSTER_LIST of 6 octets", body(CLEAN + attribute(10, b"\0" * 6, 0x80)), TAW, [], ["10.244.9.0/24"]),
    ("ORIGIN flagged optional", body(attribute(1, b"\0", 0xC0) + PATH + HOP), TAW, [], ["10.244.9.0/24"]),
    ("AS_PATH not transitive", body(ORIGIN + attribute(2, as_path([(2, [65100])]), 0x00) + HOP), TAW, [],
     ["10.244.9.0/24"]),
    ("unknown well-known attribute", body(CLEAN + attribute(99, b"\0", 0x40)), TAW, [], ["10.244.9.0/24"]),
    ("BGP-LS attribute: not validated, so not installed", body(CLEAN + attribute(29, b"\0", 0x80)), TAW, [],
     ["10.244.9.0/24"]),
    ("IPv6 EXTENDED_COMMUNITIES of 19 octets", body(CLEAN + attribute(25, b"\0" * 19, 0xC0)), TAW, [],
     ["10.244.9.0/24"]),
    ("unknown optional attribute is ignored", body(CLEAN + attribute(99, b"\0", 0xC0)), None,
     ["10.244.9.0/24"], []),
    ("AS4_PATH malformed on a 2-octet session (ExaBGP resets)", None, RESET, [], []),
    ("AS4_PATH with AS 0", None, DISCARD, ["10.244.9.0/24"], []),
    ("duplicate AS_PATH: the first one counts", None, None, ["10.244.9.0/24"], []),
    ("MP_REACH twice", body(CLEAN + mp_reach([V6]) + mp_reach([V6])), RESET, [], []),
    ("MP_UNREACH twice", body(CLEAN + mp_unreach([V6]) + mp_unreach([V6])), RESET, [], []),
    ("MP_REACH of 4 octets", body(CLEAN + attribute(14, b"\0\x02\x01\x10", 0x80)), RESET, [], []),
    ("MP_REACH next hop overruns", body(CLEAN + attribute(14, b"\0\x02\x01\x40" + b"\0" * 8, 0x80)), RESET,
     [], []),
    ("MP_REACH IPv6 next hop of 4 octets", body(CLEAN + mp_reach([V6], hop=b"\x0a\0\0\x01")), RESET, [], []),
    ("MP_REACH IPv6 prefix /129", body(CLEAN + attribute(14, b"\0\x02\x01\x10" + b"\xfd" + b"\0" * 15 + b"\0"
                                                         + b"\x81" + b"\0" * 17, 0x80)), RESET, [], []),
    ("MP_UNREACH of 2 octets", body(CLEAN + attribute(15, b"\0\x02", 0x80)), RESET, [], []),
    ("IPv6 routes with a bad ORIGIN are withdrawn too", body(attribute(1, b"\x07") + PATH + mp_reach([V6]),
                                                             nlri=[]), TAW, [], [V6]),
    ("IPv6 routes announced", body(ORIGIN + PATH + mp_reach([V6]), nlri=[]), None, [V6], []),
    ("a family bgpnet does not carry is ignored", body(CLEAN + mp_reach(["10.9.0.0/16"], hop=b"\x0a\0\0\x01",
                                                                       afi=1, safi=2)),
     None, ["10.244.9.0/24"], []),
]


def _special(name: str) -> bytes:
    if name == "AS4_PATH malformed on a 2-octet session (ExaBGP resets)":
        return body(ORIGIN + attribute(2, as_path([(2, [65100, 23456])], width=2)) + HOP
                    + attribute(17, b"\x02\x05" + (65009).to_bytes(4, "big"), 0xC0))
    if name == "AS4_PATH with AS 0":
        return body(ORIGIN + attribute(2, as_path([(2, [65100, 23456])], width=2)) + HOP
                    + attribute(17, as_path([(2, [0])]), 0xC0))
    looped = attribute(2, as_path([(2, [65100, 65001, 65009])]))
    return body(ORIGIN + PATH + looped + HOP)  # the duplicate


@pytest.mark.parametrize(("name", "message", "action", "announced", "withdrawn"), CASES, ids=[c[0] for c in CASES])
def test_rfc7606_verdict(name, message, action, announced, withdrawn):
    two_octet = name.startswith("AS4_PATH")
    result = decode_update(PEER, message if message is not None else _special(name), not two_octet)
    if action == RESET:
        assert isinstance(result, SessionReset), result
        assert result.malformed.action == RESET
        return
    assert isinstance(result, RoutesReceived), result
    assert (result.malformed.action if result.malformed else None) == action, result.malformed
    assert [str(r.prefix) for r in result.announced] == announced
    assert sorted(map(str, result.withdrawn)) == sorted(withdrawn)


def test_first_as_path_wins_over_a_later_copy():
    result = decode_update(PEER, _special("duplicate"), True)
    assert result.announced[0].as_path == (65100, 65009)


def test_as4_path_merged_on_a_two_octet_session():
    message = body(ORIGIN + attribute(2, as_path([(2, [65100, 23456])], width=2)) + HOP
                   + attribute(17, as_path([(2, [4200000001])]), 0xC0))
    assert decode_update(PEER, message, False).announced[0].as_path == (65100, 4200000001)


def test_malformed_as4_path_leaves_as_path_as_sent():
    assert decode_update(PEER, _special("AS4_PATH with AS 0"), False).announced[0].as_path == (65100, 23456)


def test_a_family_that_was_not_negotiated_resets_like_exabgp():
    message = body(ORIGIN + PATH + mp_reach([V6]), nlri=[])
    assert isinstance(decode_update(PEER, message, True, frozenset({"ipv4 unicast"})), SessionReset)
    assert isinstance(decode_update(PEER, message, True, frozenset({"ipv4 unicast", "ipv6 unicast"})),
                      RoutesReceived)


def test_offending_octets_are_bounded():
    result = decode_update(PEER, body(CLEAN + attribute(8, b"\x01" * 201, 0xC0)), True)
    assert result.malformed.offending == b"\x01" * 64


def test_end_of_rib():
    assert decode_update(PEER, b"\0\0\0\0", True) == EndOfRib(PEER, "ipv4 unicast")
    assert decode_update(PEER, body(mp_unreach([]), nlri=[]), True) == EndOfRib(PEER, "ipv6 unicast")


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_give_a_verdict_never_an_exception(data, asn4):
    result = decode_update(PEER, data, asn4)
    assert isinstance(result, RoutesReceived | EndOfRib | SessionReset)
    if isinstance(result, RoutesReceived) and result.malformed is not None:
        assert result.malformed.action != RESET
        if result.malformed.action == TAW:
            assert result.announced == ()


def _attribute_soup() -> st.SearchStrategy[bytes]:
    """Well-framed UPDATEs made of real attribute codes with random flags and values: past the framing, into
    every attribute decoder."""
    one = st.builds(lambda flags, code, value: attribute(code, value, flags),
                    st.sampled_from([0x00, 0x40, 0x80, 0xC0, 0x50, 0xD0]),
                    st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 99]),
                    st.binary(max_size=40))
    return st.builds(lambda attrs, nlri: body(b"".join(attrs), nlri=nlri),
                     st.lists(one, max_size=6), st.sampled_from([[], ["10.244.9.0/24"]]))


@settings(max_examples=3000, deadline=None)
@given(_attribute_soup(), st.booleans())
def test_any_attributes_give_a_verdict_never_an_exception(data, asn4):
    result = decode_update(PEER, data, asn4)
    assert isinstance(result, RoutesReceived | EndOfRib | SessionReset)
    if isinstance(result, RoutesReceived) and result.announced:
        assert result.malformed is None or result.malformed.action == DISCARD
