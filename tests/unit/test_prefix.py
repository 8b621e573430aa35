"""`Prefix`, the one route prefix type: parsing, the wire form, ordering, containment and the stdlib edges."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpnet.prefix import NETMASK, Prefix


def test_parse_and_text_round_trip_both_families():
    for text in ("10.1.2.0/24", "0.0.0.0/0", "192.0.2.1/32", "fd00:10:244:1::/64", "::/0"):
        prefix = Prefix.parse(text)
        assert str(prefix) == text and repr(prefix) == f"Prefix({text!r})"
        assert prefix.to_network() == ipaddress.ip_network(text)
    assert Prefix.parse("192.0.2.1") == Prefix(4, 0xC0000201, 32)


def test_host_bits_are_refused_when_parsing_and_masked_from_the_wire():
    with pytest.raises(ValueError):
        Prefix.parse("10.1.2.3/24")
    assert Prefix.from_wire(4, bytes([26, 10, 1, 2, 255])) == Prefix.parse("10.1.2.192/26")
    assert Prefix.from_wire(6, bytes([64, 0xFD, 0, 0, 0, 0, 0, 0, 1])) == Prefix.parse("fd00:0:0:1::/64")
    assert Prefix.from_wire(4, bytes([0])) == Prefix.parse("0.0.0.0/0")


@pytest.mark.parametrize(("version", "encoded", "why"), [
    (4, bytes([33, 1, 2, 3, 4, 5]), "length 33 exceeds 32"),
    (4, bytes([24, 10, 1]), "/24 encoded in 2 octets"),
    (6, bytes([129] + [0] * 17), "length 129 exceeds 128"),
])
def test_wire_framing_errors(version, encoded, why):
    with pytest.raises(ValueError, match=why):
        Prefix.from_wire(version, encoded)


def test_order_is_family_then_address_then_length_like_ipaddress():
    texts = ["fd00::/8", "10.1.0.0/24", "10.1.0.0/16", "9.0.0.0/8"]
    assert [str(p) for p in sorted(map(Prefix.parse, texts))] == \
        [str(n) for n in sorted(map(ipaddress.ip_network, texts), key=lambda n: (n.version, n))]


def test_containment_and_overlap():
    wide, narrow = Prefix.parse("10.244.0.0/16"), Prefix.parse("10.244.3.0/24")
    assert wide.contains(narrow) and not narrow.contains(wide) and wide.contains(wide)
    assert wide.overlaps(narrow) and narrow.overlaps(wide)
    assert not narrow.overlaps(Prefix.parse("10.244.4.0/24"))
    assert not Prefix.parse("::/0").contains(Prefix.parse("10.0.0.0/8"))  # never across families
    assert narrow.contains_address(ipaddress.ip_address("10.244.3.9"))
    assert not narrow.contains_address(ipaddress.ip_address("fd00::1"))


def test_packed_and_last_address():
    prefix = Prefix.parse("10.244.3.0/24")
    assert prefix.packed == bytes([10, 244, 3, 0]) and prefix.last == int(ipaddress.ip_address("10.244.3.255"))
    assert Prefix.parse("fd00::/64").packed == ipaddress.ip_address("fd00::").packed
    assert prefix.network_address == ipaddress.ip_address("10.244.3.0") and prefix.width == 32


def test_it_is_a_plain_value_and_leaves_the_process_as_text():
    prefix = Prefix.parse("10.244.3.0/24")
    assert {prefix: 1}[Prefix(4, prefix.value, 24)] == 1  # equal values hash alike
    assert prefix != ipaddress.ip_network("10.244.3.0/24")  # no silent mixing with the stdlib type
    assert json.dumps(str(prefix)) == '"10.244.3.0/24"'


@given(st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_netmask_table_matches_the_stdlib(value, length):
    network = ipaddress.IPv4Network((value, length), strict=False)
    assert value & NETMASK[4][length] == int(network.network_address)
    assert Prefix.from_network(network) == Prefix(4, value & NETMASK[4][length], length)


@given(st.integers(0, 2**128 - 1), st.integers(0, 128), st.integers(0, 2**128 - 1), st.integers(0, 128))
def test_contains_matches_subnet_of(a, la, b, lb):
    na = ipaddress.IPv6Network((a, la), strict=False)
    nb = ipaddress.IPv6Network((b, lb), strict=False)
    assert Prefix.from_network(na).contains(Prefix.from_network(nb)) == nb.subnet_of(na)
