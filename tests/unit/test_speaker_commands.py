"""set() diffs as process-API commands: announce, withdraw, nothing when unchanged, one family per peer."""

import ipaddress

import pytest

from bgpnet.model import Announcement, BgpPeer
from bgpnet.speaker.commands import desired_per_peer, diff_commands, validate_peers

ip, net = ipaddress.ip_address, ipaddress.ip_network
V4 = BgpPeer(ip("10.0.0.2"), 64512, ip("10.0.0.1"), 64512)
V4B = BgpPeer(ip("10.0.0.3"), 64512, ip("10.0.0.1"), 64512)
V6 = BgpPeer(ip("fd00::2"), 64512, ip("fd00::1"), 64512)


def test_ipv4_prefixes_go_to_ipv4_peers_and_ipv6_prefixes_to_ipv6_peers():
    desired = desired_per_peer([V4, V6], [net("10.244.1.0/24"), net("fd10:1::/64")])
    assert desired == {V4.address: frozenset({Announcement(net("10.244.1.0/24"))}),
                       V6.address: frozenset({Announcement(net("fd10:1::/64"))})}


def test_first_apply_announces_everything_with_next_hop_self():
    desired = desired_per_peer([V4, V6], [net("10.244.1.0/24"), net("fd10:1::/64")])
    assert diff_commands({}, desired) == [
        "neighbor 10.0.0.2 announce route 10.244.1.0/24 next-hop self",
        "neighbor fd00::2 announce route fd10:1::/64 next-hop self",
    ]


def test_unchanged_desired_state_sends_nothing():
    desired = desired_per_peer([V4, V4B], [net("10.244.1.0/24")])
    assert diff_commands(desired, desired) == []


def test_change_withdraws_before_announcing_and_touches_only_the_difference():
    held = desired_per_peer([V4], [net("10.244.1.0/24"), net("10.244.2.0/24")])
    desired = desired_per_peer([V4], [net("10.244.2.0/24"), net("10.244.3.0/24")])
    assert diff_commands(held, desired) == [
        "neighbor 10.0.0.2 withdraw route 10.244.1.0/24",
        "neighbor 10.0.0.2 announce route 10.244.3.0/24 next-hop self",
    ]


def test_empty_announcements_withdraw_everything():
    held = desired_per_peer([V4], [net("10.244.1.0/24")])
    assert diff_commands(held, desired_per_peer([V4], [])) == ["neighbor 10.0.0.2 withdraw route 10.244.1.0/24"]


def test_peers_that_are_being_removed_get_no_commands():
    held = desired_per_peer([V4, V4B], [net("10.244.1.0/24")])
    assert diff_commands(held, desired_per_peer([V4], [net("10.244.1.0/24")])) == []


def test_two_sessions_to_one_address_are_refused():
    with pytest.raises(ValueError, match="two BGP peers with address 10.0.0.2"):
        validate_peers([V4, BgpPeer(ip("10.0.0.2"), 65000, ip("10.0.0.1"), 64512)])
