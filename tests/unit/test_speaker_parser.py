"""ExaBGP JSON lines → events, on output recorded from a real ExaBGP 4.2.25 fed by BIRD2 (see
data/exabgp/record_fixtures.py), plus malformed lines that must become BadMessage and never raise."""

import ipaddress
import time
from pathlib import Path

import pytest

from bgpnet.model import LearnedRoute
from bgpnet.speaker import parser
from bgpnet.speaker.events import BadMessage, EndOfRib, RoutesReceived
from bgpnet.speaker.parser import Ack, Ignored, RelayHello, StateChange, parse_line

DATA = Path(__file__).parent / "data" / "exabgp"
ip, net = ipaddress.ip_address, ipaddress.ip_network
TOR = ip("172.31.0.254")


def recorded(name):
    return [parse_line(line) for line in (DATA / name).read_bytes().splitlines()]


def test_recorded_bird_session_becomes_the_expected_sequence():
    parsed = recorded("bird_session.jsonl")
    attrs = dict(peer=TOR, next_hop=TOR, as_path=(65000,), communities=("65000:100", "65000:1:2"))
    assert parsed == [
        StateChange(TOR, "connected"),
        StateChange(TOR, "up"),
        RoutesReceived(TOR, (LearnedRoute(prefix=net("10.200.2.0/24"), **attrs),
                             LearnedRoute(prefix=net("10.200.3.0/25"), **attrs),
                             LearnedRoute(prefix=net("10.200.1.0/24"), **attrs)), ()),
        EndOfRib(TOR, "ipv4 unicast"),
        RoutesReceived(TOR, (), (net("10.200.2.0/24"),)),
        StateChange(TOR, "down", "stop, message (shutting down)"),
        Ignored("notification"),
    ]


def test_recorded_10k_feed_yields_every_prefix_once_then_end_of_rib():
    parsed = recorded("feed_10k.jsonl")
    routes = [r for p in parsed if isinstance(p, RoutesReceived) for r in p.announced]
    assert len(routes) == 10_000
    assert len({r.prefix for r in routes}) == 10_000
    assert {r.next_hop for r in routes} == {TOR}
    assert all(r.prefix.prefixlen == 26 and r.prefix.subnet_of(net("10.128.0.0/12")) for r in routes)
    assert EndOfRib(TOR, "ipv4 unicast") in parsed
    assert not [p for p in parsed if isinstance(p, BadMessage)]


def test_parser_cost_per_prefix_on_the_recorded_feed_is_reported():
    # Not a timed assertion: the figure is printed (-s) for the report; the check is only that it ran.
    lines = (DATA / "feed_10k.jsonl").read_bytes().splitlines()
    figures = {}
    for label, clear in (("first table", True), ("re-learned table", False)):
        best = float("inf")
        for _ in range(5):
            if clear:
                parser._v4_cache.clear()
            start = time.perf_counter()
            count = sum(len(p.announced) for p in map(parse_line, lines) if isinstance(p, RoutesReceived))
            best = min(best, time.perf_counter() - start)
        figures[label] = best / count * 1e6
        assert count == 10_000
    print("\nparser µs/prefix: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))


def test_ack_lines_are_acks_not_events():
    assert parse_line(b"done\n") == Ack(ok=True)
    assert parse_line(b"error\n") == Ack(ok=False)


def test_relay_hello_names_the_exabgp_pid():
    assert parse_line(b'{"relay": {"exabgp-pid": 4242}}\n') == RelayHello(4242)


def test_ipv6_update_with_as_set_keeps_set_members_in_the_path():
    line = ('{ "exabgp": "4.0.1", "type": "update", "neighbor": { "address": { "local": "fd00::1", "peer": '
            '"fd00::2" }, "asn": { "local": 64512, "peer": 65001 }, "direction": "receive", "message": { '
            '"update": { "attribute": { "origin": "igp", "as-path": [ 65001, 65002 ], "as-set": [ 65003 ] }, '
            '"announce": { "ipv6 unicast": { "fd00::2": [ { "nlri": "fd10:1::/64" } ] } }, '
            '"withdraw": { "ipv6 unicast": [ { "nlri": "fd10:2::/64" } ] } } } } }')
    assert parse_line(line) == RoutesReceived(
        ip("fd00::2"), (LearnedRoute(ip("fd00::2"), net("fd10:1::/64"), ip("fd00::2"), (65001, 65002, 65003)),),
        (net("fd10:2::/64"),))


def test_families_bgpnet_does_not_carry_are_skipped():
    line = ('{ "type": "update", "neighbor": { "address": { "local": "10.0.0.1", "peer": "10.0.0.2" }, '
            '"message": { "update": { "attribute": { "origin": "igp" }, "announce": { "ipv4 flow": '
            '{ "no-nexthop": [ { "destination-ipv4": [ "10.0.0.0/24" ] } ] } } } } } }')
    assert parse_line(line) == RoutesReceived(ip("10.0.0.2"), (), ())


GOOD = (DATA / "bird_session.jsonl").read_text().splitlines()[2]


@pytest.mark.parametrize("line, error", [
    ("", "not JSON"),
    ("reload in progress", "not JSON"),
    (GOOD[: len(GOOD) // 2], "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"type": "bogus"}', "unknown message type"),
    ('{"type": "state", "neighbor": {"address": {"peer": "10.0.0.2"}}}', "KeyError"),
    ('{"type": "state", "neighbor": {"address": {"peer": "not-an-ip"}, "state": "up"}}', "ValueError"),
    (GOOD.replace('"10.200.2.0/24"', '"10.200.2.7/24"'), "host bits set"),
    (GOOD.replace('"10.200.2.0/24"', '"999.1.1.0/24"'), "invalid IPv4 prefix"),
    (GOOD.replace('"10.200.2.0/24"', '"10.200.2/24"'), "invalid IPv4 prefix"),
    (GOOD.replace('"10.200.2.0/24"', '"10.200.2.0/33"'), "ValueError"),
    (GOOD.replace('[ 65000 ]', '[ "x" ]'), "ValueError"),
    (GOOD.replace('"announce"', '"nothing"'), "update without announce"),
    ("\xff\xfe garbage", "not JSON"),
])
def test_malformed_lines_become_bad_messages(line, error):
    parsed = parse_line(line.encode("utf-8", "surrogateescape") if line.startswith("\xff") else line)
    assert isinstance(parsed, BadMessage)
    assert error in parsed.error
