"""The config file: valid documents become typed values; every invalid field gets an exact message."""

import ipaddress

import pytest

from bgpnet.config import AgentConfig, CniSettings, ConfigError, load_config_text, parse_config

MINIMAL = {"asn": 64512, "clusterCIDRs": ["10.244.0.0/16", "fd00:10:244::/48"]}


def test_minimal_config_gets_documented_defaults():
    cfg = parse_config(MINIMAL)
    assert cfg == AgentConfig(
        asn=64512,
        cluster_cidrs=(ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00:10:244::/48")),
        node_to_node_mesh=True, hold_time=9, route_sync_period=30.0, startup_grace_period=30.0,
        cni=CniSettings(mtu=1500, data_dir="/var/lib/cni/bgpnet", log_file=""),
    )


def test_yaml_from_the_issue_parses():
    cfg = load_config_text("asn: 64512\nclusterCIDRs: [10.244.0.0/16, fd00:10:244::/48]\nnodeToNodeMesh: true\n")
    assert cfg.asn == 64512 and cfg.node_to_node_mesh is True and len(cfg.cluster_cidrs) == 2


def test_all_fields_parse():
    cfg = parse_config({**MINIMAL, "nodeToNodeMesh": False, "holdTime": 30, "routeSyncPeriod": 5,
                        "startupGracePeriod": 2.5,
                        "cni": {"mtu": 9000, "dataDir": "/tmp/x", "logFile": "/tmp/cni.log"}})
    assert (cfg.node_to_node_mesh, cfg.hold_time, cfg.route_sync_period, cfg.startup_grace_period) == (
        False, 30, 5.0, 2.5)
    assert cfg.cni == CniSettings(mtu=9000, data_dir="/tmp/x", log_file="/tmp/cni.log")


@pytest.mark.parametrize(("override", "message"), [
    ({"asn": 0}, "asn: invalid AS number 0: must be 1..4294967295 and not 23456 (AS_TRANS)"),
    ({"asn": 23456}, "asn: invalid AS number 23456: must be 1..4294967295 and not 23456 (AS_TRANS)"),
    ({"asn": 4294967296}, "asn: invalid AS number 4294967296: must be 1..4294967295 and not 23456 (AS_TRANS)"),
    ({"asn": "64512"}, "asn: must be an integer AS number, got '64512'"),
    ({"asn": True}, "asn: must be an integer AS number, got True"),
    ({"clusterCIDRs": []}, "clusterCIDRs: must be a non-empty list of CIDRs"),
    ({"clusterCIDRs": "10.0.0.0/8"}, "clusterCIDRs: must be a non-empty list of CIDRs"),
    ({"clusterCIDRs": ["10.244.0.1/16"]},
     "clusterCIDRs: invalid CIDR '10.244.0.1/16': 10.244.0.1/16 has host bits set"),
    ({"clusterCIDRs": ["banana"]},
     "clusterCIDRs: invalid CIDR 'banana': 'banana' does not appear to be an IPv4 or IPv6 network"),
    ({"clusterCIDRs": [10]}, "clusterCIDRs: invalid CIDR 10: must be a string such as 10.244.0.0/16"),
    ({"clusterCIDRs": ["10.0.0.0/8", "10.244.0.0/16"]}, "clusterCIDRs: CIDRs 10.0.0.0/8 and 10.244.0.0/16 overlap"),
    ({"nodeToNodeMesh": "yes"}, "nodeToNodeMesh: must be true or false, got 'yes'"),
    ({"holdTime": 2}, "holdTime: must be 0 or 3..65535 seconds (RFC 4271), got 2"),
    ({"holdTime": 70000}, "holdTime: must be an integer in 0..65535, got 70000"),
    ({"routeSyncPeriod": 0}, "routeSyncPeriod: must be a positive number of seconds, got 0"),
    ({"startupGracePeriod": -1}, "startupGracePeriod: must be a positive number of seconds, got -1"),
    ({"cni": {"mtu": 100}}, "cni.mtu: must be an integer in 576..65535, got 100"),
    ({"cni": {"dataDir": "relative"}}, "cni.dataDir: must be an absolute path, got 'relative'"),
    ({"cni": {"mtuu": 1500}}, "cni.mtuu: unknown field (known: bandwidth, dataDir, logFile, mtu, portMap)"),
    ({"cni": []}, "cni: must be a mapping"),
    ({"nodeToNodeMeshh": True}, "nodeToNodeMeshh: unknown field (known: asn, bfd, clusterCIDRs, cni, communities, "
                                "defaultLoadBalancer, gracefulRestart, holdTime, importPolicy, keepaliveTime, "
                                "largeCommunities, livenessPeersDownAfter, loadBalancerPools, natOutgoing, "
                                "nodeToNodeMesh, notReadyGracePeriod, peers, routeSyncPeriod, serviceClusterIPs, "
                                "serviceCommunities, serviceExternalIPs, serviceLargeCommunities, "
                                "serviceLoadBalancerIPs, startupGracePeriod)"),
])
def test_invalid_field_names_the_field(override, message):
    with pytest.raises(ConfigError) as err:
        parse_config({**MINIMAL, **override})
    assert str(err.value) == message


@pytest.mark.parametrize("missing", ["asn", "clusterCIDRs"])
def test_required_fields(missing):
    raw = dict(MINIMAL)
    del raw[missing]
    with pytest.raises(ConfigError, match=f"^{missing}: is required$"):
        parse_config(raw)


def test_not_a_mapping_and_bad_yaml():
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"^\(file\): not valid YAML"):
        load_config_text("asn: [1,\n")


def test_a_yaml_syntax_error_is_one_line_naming_where():
    with pytest.raises(ConfigError) as caught:
        load_config_text("asn: 64512\npeers:\n  - address: 10.0.0.1\n   asn: 65000\n")
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("at line 4, column 4")
