"""`bfd:` in the config, globally and per peer (config file and node annotation), and the BFD sessions the
intent derives from it."""

import json
from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest

from bgpnet.config import BfdSettings, ConfigError, parse_config
from bgpnet.model import BfdPeer, NodeInfo
from bgpnet.state import speaker_intent

BASE = {"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]}


def node(name, ip, cidr, annotations=()):
    return NodeInfo(name=name, internal_ips=(A(ip),), pod_cidrs=(N(cidr),), annotations=tuple(annotations))


def test_off_by_default_with_data_centre_timers():
    assert parse_config(BASE).bfd == BfdSettings(enabled=False, min_rx_ms=300, min_tx_ms=300, multiplier=3)


def test_a_peer_overrides_the_global_settings_field_by_field():
    cfg = parse_config({**BASE, "bfd": {"enabled": True, "minRx": 100, "multiplier": 5},
                        "peers": [{"address": "172.31.0.9", "asn": 65000, "bfd": {"minTx": 50}},
                                  {"address": "172.31.0.10", "asn": 65000}]})
    assert cfg.bfd == BfdSettings(True, 100, 300, 5)
    assert cfg.peers[0].bfd == BfdSettings(True, 100, 50, 5)
    assert cfg.peers[1].bfd is None  # the global settings


@pytest.mark.parametrize(("raw", "message"), [
    ({"bfd": {"enabled": "yes"}}, "bfd.enabled: must be true or false, got 'yes'"),
    ({"bfd": {"minRx": 5}}, "bfd.minRx: must be an integer in 10..60000, got 5"),
    ({"bfd": {"multiplier": 1}}, "bfd.multiplier: must be an integer in 2..255, got 1"),
    ({"bfd": {"interval": 300}}, "bfd.interval: unknown field (known: enabled, minRx, minTx, multiplier)"),
    ({"bfd": []}, "bfd: must be a mapping with enabled, minRx, minTx and multiplier"),
    ({"peers": [{"address": "172.31.0.9", "asn": 65000, "bfd": {"minTx": 0}}]},
     "peers[0].bfd.minTx: must be an integer in 10..60000, got 0"),
])
def test_bad_settings_name_the_field(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, **raw})
    assert str(err.value) == message


def test_sessions_for_mesh_configured_and_annotation_peers_but_not_multihop_ones():
    cfg = parse_config({**BASE, "bfd": {"enabled": True, "minRx": 100, "minTx": 100},
                        "peers": [{"address": "172.31.0.9", "asn": 65000, "bfd": {"enabled": False}},
                                  {"address": "172.19.0.1", "asn": 65000, "multihop": 2}]})
    annotation = ("bgpnet.io/peers", json.dumps([{"address": "172.31.0.8", "asn": 65001,
                                                  "bfd": {"multiplier": 4}}]))
    me = node("n1", "172.31.0.1", "10.244.1.0/24", [annotation])
    nodes = {"n1": me, "n2": node("n2", "172.31.0.2", "10.244.2.0/24")}
    intent = speaker_intent(cfg, me, nodes, disabled=[A("172.31.0.2")])
    local = A("172.31.0.1")
    assert intent.bfd == {BfdPeer(A("172.31.0.2"), local, 100, 100, 3),  # held out of BGP, BFD still runs
                          BfdPeer(A("172.31.0.8"), local, 100, 100, 4)}
    assert A("172.31.0.2") not in {p.address for p in intent.peers}
    assert intent.problems == ("peer 172.19.0.1: BFD is single-hop only (RFC 5881) and this peer is multihop; "
                               "BFD not run for it",)
