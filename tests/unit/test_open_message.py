"""OPEN decoding (graceful restart capability, RFC 4724 §3 / RFC 5492 / RFC 9072): per-family Forwarding State
bits, and totality — no byte string makes it raise."""

from bgp_encode import graceful_restart_capability, open_body
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpnet.speaker.events import GracefulRestart
from bgpnet.speaker.open_message import MalformedOpen, OpenDecoded, decode_open

MP_IPV4 = bytes([1, 4, 0, 1, 0, 1])


def test_frr_default_capability_has_a_restart_time_and_no_family():
    body = open_body(65001, "10.0.0.2", MP_IPV4 + graceful_restart_capability(120))
    assert decode_open(body) == OpenDecoded(GracefulRestart(120, False, {}))


def test_bird_like_capability_lists_families_with_their_forwarding_state():
    capability = graceful_restart_capability(
        120, flags=8, families=((1, 1, 0x80), (2, 1, 0x00), (1, 133, 0x80)))  # flowspec is not carried
    body = open_body(65001, "10.0.0.2", MP_IPV4 + capability)
    assert decode_open(body) == OpenDecoded(GracefulRestart(
        120, True, {"ipv4 unicast": True, "ipv6 unicast": False}))


def test_other_family_flag_bits_do_not_count_as_forwarding_state():
    body = open_body(65001, "10.0.0.2", graceful_restart_capability(90, families=((1, 1, 0x7F),)))
    assert decode_open(body) == OpenDecoded(GracefulRestart(90, False, {"ipv4 unicast": False}))


def test_no_capability_gives_none():
    assert decode_open(open_body(65001, "10.0.0.2", MP_IPV4)) == OpenDecoded(None)
    assert decode_open(open_body(65001, "10.0.0.2")) == OpenDecoded(None)


def test_rfc9072_extended_parameters():
    capability = graceful_restart_capability(45, families=((2, 1, 0x80),))
    params = bytes([255, 255]) + (3 + len(capability)).to_bytes(2, "big") + bytes([2]) + \
        len(capability).to_bytes(2, "big") + capability
    body = bytes([4, 0xFD, 0xE8, 0, 90, 10, 0, 0, 3]) + params
    assert decode_open(body) == OpenDecoded(GracefulRestart(45, False, {"ipv6 unicast": True}))


def test_malformed_opens_say_why():
    cases = {
        "04FE4C00090AFE00020102": "optional parameter header overruns",  # length 1, one octet follows
        "04FE4C00090AFE0002": "OPEN body of 9 octets",
        "04FE4C00090AFE000205": "overrun the OPEN",
        "04FE4C00090AFE00020402024005": "overruns its parameter",  # capability longer than its parameter
        "04FE4C00090AFE0002070205400300780"  "0": "graceful restart capability of 3 octets",  # neither 2 + 4n
        "04FE4C00090AFE0002FFFF": "truncated extended",
        "04FE4C00090AFE0002FFFF0003020005": "optional parameter overruns",
        "04FE4C00090AFE000200AA": "1 octets after",
    }
    for hex_body, reason in cases.items():
        result = decode_open(bytes.fromhex(hex_body))
        assert isinstance(result, MalformedOpen) and reason in result.reason, (hex_body, result)


@settings(max_examples=2000)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise(body):
    assert isinstance(decode_open(body), OpenDecoded | MalformedOpen)


_capability = st.tuples(st.integers(0, 255), st.binary(max_size=20)).map(
    lambda cv: bytes([cv[0], len(cv[1])]) + cv[1])
_gr_capability = st.tuples(st.integers(0, 0xFFFF), st.lists(st.binary(min_size=4, max_size=4), max_size=4),
                           st.binary(max_size=3)).map(
    lambda t: (lambda v: bytes([64, len(v)]) + v)(t[0].to_bytes(2, "big") + b"".join(t[1]) + t[2]))


@settings(max_examples=2000)
@given(st.lists(st.one_of(_capability, _gr_capability), max_size=5), st.integers(-3, 3), st.booleans(),
       st.integers(0, 255))
def test_well_framed_but_odd_opens_never_raise(capabilities, skew, extended, parameter_type):
    """Capabilities of any code and content (graceful restart ones of odd sizes), in a Capabilities or other
    parameter, with the declared lengths off by a few octets, plain or RFC 9072-extended."""
    value = b"".join(capabilities)
    if extended:
        parameter = bytes([parameter_type]) + max(0, len(value) + skew).to_bytes(2, "big") + value
        params = bytes([255, 255]) + max(0, len(parameter) + skew).to_bytes(2, "big") + parameter
        length = 255
    else:
        parameter = bytes([parameter_type, max(0, min(255, len(value) + skew))]) + value[:255]
        params, length = parameter, max(0, min(255, len(parameter) + skew))
    body = bytes([4, 0xFD, 0xE8, 0, 90, 10, 0, 0, 3, length]) + params
    result = decode_open(body)
    assert isinstance(result, OpenDecoded | MalformedOpen)
    if skew == 0 and parameter_type == 2 and isinstance(result, OpenDecoded) and result.graceful_restart:
        assert 0 <= result.graceful_restart.restart_time <= 0x0FFF
