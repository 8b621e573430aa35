"""parse_node: a Node dict in, a validated NodeInfo or an exact BadNode message out."""

from __future__ import annotations

import ipaddress

import pytest

from bgpnet.kube.node_parse import BadNode, parse_node
from integration.kube_api import make_node


def _node(**changes):
    node = make_node("n1", ["10.0.0.1"], ["10.244.1.0/24"], labels={"bgpnet.io/asn": "64512"},
                     annotations={"z": "1", "a": "2"})
    for path, value in changes.items():
        target = node
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    return node


def test_good_node():
    info = parse_node(_node())
    assert info.name == "n1"
    assert info.internal_ips == (ipaddress.ip_address("10.0.0.1"),)
    assert info.pod_cidrs == (ipaddress.ip_network("10.244.1.0/24"),)
    assert info.labels == (("bgpnet.io/asn", "64512"), ("kubernetes.io/hostname", "n1"))
    assert info.annotations == (("a", "2"), ("z", "1"))
    assert info.label("bgpnet.io/asn") == "64512"
    assert info.ready is True


def test_dual_stack_node():
    node = make_node("n1", ["10.0.0.1", "fd00::1"], ["10.244.1.0/24", "fd00:244:1::/64"])
    info = parse_node(node)
    assert info.internal_ip(6) == ipaddress.ip_address("fd00::1")
    assert [c.version for c in info.pod_cidrs] == [4, 6]


def test_node_without_pod_cidrs_yet_is_not_bad():
    info = parse_node(make_node("fresh", ["10.0.0.9"], []))
    assert info.pod_cidrs == ()


def test_lone_pod_cidr_from_an_old_server_is_used():
    info = parse_node(_node(spec={"podCIDR": "10.244.7.0/24"}))
    assert info.pod_cidrs == (ipaddress.ip_network("10.244.7.0/24"),)


@pytest.mark.parametrize(
    ("condition", "ready"),
    [([{"type": "Ready", "status": "True"}], True), ([{"type": "Ready", "status": "False"}], False),
     ([{"type": "Ready", "status": "Unknown"}], False), ([], False)],
)
def test_ready_follows_the_ready_condition(condition, ready):
    assert parse_node(_node(status__conditions=condition)).ready is ready


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status__addresses": [{"type": "Hostname", "address": "n1"}]},
         'node "n1": no InternalIP in status.addresses'),
        ({"status__addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}]},
         'node "n1": no InternalIP in status.addresses'),
        ({"status__addresses": [{"type": "InternalIP", "address": "10.0.0.300"}]},
         'node "n1": invalid InternalIP "10.0.0.300"'),
        ({"spec": {"podCIDRs": ["banana"]}}, 'node "n1": invalid pod CIDR "banana": not an IP network'),
        ({"spec": {"podCIDRs": ["10.244.1.0"]}}, 'node "n1": invalid pod CIDR "10.244.1.0": no prefix length'),
        ({"spec": {"podCIDRs": ["10.244.1.0/33"]}}, 'node "n1": invalid pod CIDR "10.244.1.0/33": not an IP network'),
        ({"spec": {"podCIDRs": ["10.244.1.7/24"]}},
         'node "n1": invalid pod CIDR "10.244.1.7/24": host bits set (network is 10.244.1.0/24)'),
        ({"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.2.0/24"]}},
         'node "n1": spec.podCIDR "10.244.1.0/24" does not match spec.podCIDRs[0] "10.244.2.0/24"'),
        ({"spec": {"podCIDRs": ["10.244.1.0/24", "10.245.1.0/24"]}},
         'node "n1": spec.podCIDRs has more than one IPv4 range: 10.244.1.0/24, 10.245.1.0/24'),
    ],
)
def test_bad_nodes(changes, message):
    with pytest.raises(BadNode) as err:
        parse_node(_node(**changes))
    assert str(err.value) == message
    assert err.value.name == "n1"
