"""The ToR peering part of the config: peers, password references, communities, import policy."""

from ipaddress import ip_address as A

import pytest

from bgpnet.config import ConfigError, ImportOptions, PasswordRef, parse_config

BASE = {"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]}


def test_full_peer_is_parsed_into_typed_values():
    cfg = parse_config({**BASE, "importPolicy": {"maxPrefixes": 100},
                        "communities": ["64512:100", "64512:100"], "largeCommunities": "64512:1:2, 64512:1:3",
                        "peers": [{"address": "172.19.1.1", "asn": 65101, "port": 1179, "holdTime": 30,
                                   "keepaliveTime": 10, "multihop": 2, "passive": True,
                                   "password": {"secret": {"namespace": "bgpnet-system",
                                                           "name": "bgpnet-bgp-passwords", "key": "tor"}},
                                   "nodeSelector": {"bgpnet.io/rack": "r1"},
                                   "importPolicy": {"acceptDefaultRoute": True}}]})
    (peer,) = cfg.peers
    assert peer.address == A("172.19.1.1") and peer.asn == 65101 and peer.port == 1179
    assert peer.hold_time == 30 and peer.multihop == 2 and peer.passive
    assert peer.password == PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "tor")
    assert peer.node_selector == (("bgpnet.io/rack", "r1"),)
    # The peer's importPolicy overrides the global one field by field.
    assert peer.import_options == ImportOptions(accept_default_route=True, max_prefixes=100)
    assert cfg.communities == ("64512:100",) and cfg.large_communities == ("64512:1:2", "64512:1:3")
    assert peer.selects({"bgpnet.io/rack": "r1", "x": "y"}) and not peer.selects({"bgpnet.io/rack": "r2"})


def test_keepalive_alone_sets_the_hold_time_and_defaults_are_sane():
    cfg = parse_config({**BASE, "peers": [{"address": "fd00::1", "asn": 65000, "keepaliveTime": 3,
                                           "password": {"file": "/etc/bgpnet/md5"}}]})
    assert cfg.peers[0].hold_time == 9 and cfg.peers[0].password == PasswordRef(file="/etc/bgpnet/md5")
    assert cfg.import_options == ImportOptions()


@pytest.mark.parametrize(("peers", "message"), [
    ([{"asn": 65000}], "peers[0].address: is required"),
    ([{"address": "172.19.1.1"}], "peers[0].asn: is required"),
    ([{"address": "nope", "asn": 65000}], "peers[0].address: invalid BGP peer address 'nope'"),
    ([{"address": "1.2.3.4", "asn": 23456}], "peers[0].asn: invalid AS number 23456: must be 1..4294967295 and "
                                              "not 23456 (AS_TRANS)"),
    ([{"address": "1.2.3.4", "asn": 1, "holdTime": 9, "keepaliveTime": 2}],
     "peers[0].keepaliveTime: must be holdTime/3 (9/3): the speaker derives keepalives from the hold time, got 2"),
    ([{"address": "1.2.3.4", "asn": 1, "multihop": 0}], "peers[0].multihop: must be an integer in 1..255, got 0"),
    ([{"address": "1.2.3.4", "asn": 1, "password": "plain"}],
     "peers[0].password: must be {secret: {namespace, name, key}} or {file: /absolute/path}; the password "
     "itself never goes into the config"),
    ([{"address": "1.2.3.4", "asn": 1, "password": {"secret": {"namespace": "a", "name": "b"}}}],
     "peers[0].password.secret.key: is required (a non-empty string)"),
    ([{"address": "1.2.3.4", "asn": 1, "password": {"file": "rel"}}],
     "peers[0].password.file: must be an absolute path, got 'rel'"),
    ([{"address": "1.2.3.4", "asn": 1, "importPolicy": {"maxPrefixAction": "drop"}}],
     "peers[0].importPolicy.maxPrefixAction: must be one of warn, teardown, got 'drop'"),
    ([{"address": "1.2.3.4", "asn": 1, "nodeSelector": {"rack": 1}}],
     "peers[0].nodeSelector: must be a mapping of label names to string values"),
    ([{"address": "1.2.3.4", "asn": 1, "passwd": {}}],
     "peers[0].passwd: unknown field (known: address, asn, bfd, families, holdTime, importPolicy, keepaliveTime, "
     "multihop, "
     "nodeSelector, passive, password, port)"),
])
def test_invalid_peer_names_the_field(peers, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "peers": peers})
    assert str(err.value) == message


@pytest.mark.parametrize(("override", "message"), [
    ({"communities": ["64512"]}, "communities: invalid community '64512': must look like 64512:100, each part < 2^16"),
    ({"communities": ["70000:1"]}, "communities: invalid community '70000:1': must look like 64512:100, each part "
                                   "< 2^16"),
    ({"largeCommunities": ["1:2"]}, "largeCommunities: invalid large community '1:2': must look like 64512:1:100, "
                                    "each part < 2^32"),
    ({"importPolicy": {"maxPrefixes": -1}}, "importPolicy.maxPrefixes: must be an integer in 0..10000000, got -1"),
])
def test_invalid_communities_and_policy(override, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, **override})
    assert str(err.value) == message
