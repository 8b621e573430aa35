"""bgpnet never acts on an UPDATE that ExaBGP will reject (differential against ExaBGP's own decoder).

ExaBGP hands bgpnet each raw UPDATE before parsing it; when its parser then fails, it sends a NOTIFICATION and
drops the session, but the agent has already read the message. So whenever ExaBGP 4.2.25 (as bgpnet's
launcher runs it) rejects a message, bgpnet's verdict must announce nothing from it: a session reset, or a
treat-as-withdraw (harmless: the session goes down right after and every route of the peer with it).
ExaBGP's reader turns any exception of its decoder into a NOTIFICATION (reactor/protocol.py), so "rejects"
here means "raises".
"""

from __future__ import annotations

import ipaddress

import pytest
from bgp_encode import as_path, attribute, prefix_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bgpnet.speaker.events import RoutesReceived, SessionReset
from bgpnet.speaker.wire import decode_update

PEER = ipaddress.ip_address("172.20.1.1")


def exabgp_rejects(body: bytes, asn4: bool) -> bool:
    from exabgp.bgp.message import Message
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.open.capability.negotiated import Negotiated
    from exabgp.protocol.family import AFI, SAFI

    negotiated = Negotiated(None)
    negotiated.asn4 = asn4
    negotiated.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]
    try:
        Message.unpack(2, body, Direction.IN, negotiated)
    except Exception:
        return True
    return False


def verdict(body: bytes, asn4: bool):
    return decode_update(PEER, body, asn4, frozenset({"ipv4 unicast", "ipv6 unicast"}))


def _message(attrs: list[bytes], withdrawn: list[str], nlri: list[str]) -> bytes:
    a = b"".join(attrs)
    w = b"".join(prefix_bytes(p) for p in withdrawn)
    return len(w).to_bytes(2, "big") + w + len(a).to_bytes(2, "big") + a + b"".join(prefix_bytes(p) for p in nlri)


_V4 = st.sampled_from(["10.244.9.0/24", "10.244.10.0/25", "10.244.11.7/32"])
_V6 = st.sampled_from(["fd10:244:9::/64", "fd10:244:10::/120"])


def _mp_reach() -> st.SearchStrategy[bytes]:
    hop = st.sampled_from([b"\x0a\0\0\x01", b"\xfd" + b"\0" * 15, b"\xfe\x80" + b"\0" * 30, b"", b"\0" * 12])
    return st.builds(
        lambda afi, safi, h, reserved, prefixes, flags: attribute(
            14, afi.to_bytes(2, "big") + bytes([safi, len(h)]) + h + bytes([reserved])
            + b"".join(prefix_bytes(p) for p in prefixes), flags),
        st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 128]), hop, st.sampled_from([0, 0, 0, 1]),
        st.lists(st.one_of(_V4, _V6), max_size=3), st.sampled_from([0x80, 0x80, 0xC0, 0x40]))


def _mp_unreach() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda afi, safi, prefixes: attribute(15, afi.to_bytes(2, "big") + bytes([safi])
                                              + b"".join(prefix_bytes(p) for p in prefixes), 0x80),
        st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]), st.lists(st.one_of(_V4, _V6), max_size=3))


def _attribute() -> st.SearchStrategy[bytes]:
    random_value = st.builds(lambda flags, code, value: attribute(code, value, flags),
                             st.sampled_from([0x00, 0x40, 0x80, 0xC0, 0x50, 0xE0]),
                             st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 17, 18, 22, 25, 26, 29, 32, 40, 99,
                                              128]),
                             st.binary(max_size=24))
    plausible = st.sampled_from([
        attribute(1, b"\0"), attribute(1, b"\x02"), attribute(2, as_path([(2, [65100, 65009])])),
        attribute(2, as_path([(2, [65100, 65009])], width=2)), attribute(2, b""), attribute(3, b"\xac\x14\x01\x01"),
        attribute(4, b"\0\0\0\x05", 0x80), attribute(5, b"\0\0\0\x64"), attribute(8, b"\xfd\xe8\0\x01", 0xC0),
        attribute(32, b"\0" * 12, 0xC0), attribute(17, as_path([(2, [4200000001])]), 0xC0),
        attribute(7, b"\0\0\xfd\xe8\x0a\0\0\x01", 0xC0), attribute(6, b""),
    ])
    return st.one_of(random_value, plausible, plausible, _mp_reach(), _mp_unreach())


_SOUP = st.builds(_message, st.lists(_attribute(), max_size=7), st.lists(_V4, max_size=2),
                  st.lists(_V4, max_size=2))


def _one_thing_wrong(asn4: bool, extra: bytes, position: int) -> tuple[bytes, bool]:
    """A valid announcement with one random attribute inserted: the single-error cases, on either session."""
    base = [attribute(1, b"\0"), attribute(2, as_path([(2, [65100, 65009])], width=4 if asn4 else 2)),
            attribute(3, b"\xac\x14\x01\x01")]
    base.insert(position % 4, extra)
    return _message(base, [], ["10.244.9.0/24"]), asn4


_SINGLE = st.builds(_one_thing_wrong, st.booleans(), _attribute(), st.integers(0, 3))
_MESSAGES = st.one_of(st.tuples(_SOUP, st.booleans()), _SINGLE)


def _mutated(message: bytes, position: int, value: int) -> bytes:
    if not message:
        return message
    i = position % len(message)
    return message[:i] + bytes([value]) + message[i + 1:]


@pytest.mark.usefixtures("patched")
@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_MESSAGES, st.builds(lambda m, p, v: (_mutated(m[0], p, v), m[1]), _MESSAGES,
                                      st.integers(0, 200), st.integers(0, 255))))
def test_nothing_exabgp_rejects_is_announced(case):
    message, asn4 = case
    result = verdict(message, asn4)
    if exabgp_rejects(message, asn4):
        assert isinstance(result, SessionReset) or (isinstance(result, RoutesReceived) and not result.announced), \
            (message.hex(), result)


@pytest.mark.usefixtures("patched")
@pytest.mark.parametrize("message", [
    _message([attribute(14, b"\0\x02\x01\x10" + b"\xfd" + b"\0" * 15 + b"\x01", 0x80)], [], []),  # reserved 1
    _message([attribute(14, b"\0\x02\x01\x10" + b"\xfd" + b"\0" * 15 + b"\0", 0x80)], [], []),    # no NLRI
    _message([attribute(14, b"\0\x01\x02\x04\x0a\0\0\x01\0" + prefix_bytes("10.9.0.0/16"), 0x80)], [], []),
    _message([attribute(15, b"\0\x03\x01", 0x80)], [], []),                                       # AFI 3
])
def test_where_exabgp_resets_beyond_rfc7606_bgpnet_resets_too(message):
    assert exabgp_rejects(message, True)
    assert isinstance(verdict(message, True), SessionReset)
