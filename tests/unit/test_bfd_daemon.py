"""The BFD process's pure parts: the peer configuration it accepts and the received TTL it reads."""

import socket
import struct

import pytest

from bgpnet.bfd.daemon import PeerConfig, received_ttl


def test_peer_configuration_is_parsed_and_checked():
    config = PeerConfig.parse({"peer": "fd00::1", "local": "fd00::2", "min_tx_ms": 100, "min_rx_ms": 200,
                               "multiplier": 5})
    assert config == PeerConfig("fd00::1", "fd00::2", 100, 200, 5)
    assert PeerConfig.parse({"peer": "10.0.0.1", "local": "10.0.0.2"}) == PeerConfig("10.0.0.1", "10.0.0.2")


@pytest.mark.parametrize("raw", [
    {"peer": "10.0.0.1", "local": "10.0.0.2", "min_tx_ms": 0},
    {"peer": "10.0.0.1", "local": "10.0.0.2", "multiplier": 256},
    {"peer": "not-an-address", "local": "10.0.0.2"},
])
def test_bad_peer_configuration_is_refused(raw):
    with pytest.raises(ValueError):
        PeerConfig.parse(raw)


def test_received_ttl_from_either_family():
    assert received_ttl([(socket.IPPROTO_IP, 2, struct.pack("i", 255))]) == 255
    assert received_ttl([(socket.IPPROTO_IPV6, 52, struct.pack("i", 64))]) == 64
    assert received_ttl([]) is None
