"""`loadBalancerPools`: parsing, exact field errors, capacity and membership."""

from __future__ import annotations

import ipaddress

import pytest

from bgpnet.config import ConfigError, parse_config
from bgpnet.lb_pools import LoadBalancerPool, parse_pools


def _pools(*items):
    return parse_pools("loadBalancerPools", list(items))


def _error(*items) -> tuple[str, str]:
    with pytest.raises(ConfigError) as err:
        _pools(*items)
    return err.value.field, str(err.value)


def test_cidrs_ranges_and_single_addresses_with_capacity_per_family():
    (pool,) = _pools({"name": "public", "addresses": ["10.0.1.10-10.0.1.20", "10.0.0.0/24", "fd00:1::/120",
                                                     "10.0.2.7"]})
    assert [(str(a), str(b)) for a, b in pool.ranges] == [
        ("10.0.0.0", "10.0.0.255"), ("10.0.1.10", "10.0.1.20"), ("10.0.2.7", "10.0.2.7"), ("fd00:1::", "fd00:1::ff")]
    assert pool.families() == (4, 6)
    # Every address of a CIDR, network and broadcast included.
    assert (pool.capacity(4), pool.capacity(6)) == (256 + 11 + 1, 256)
    assert pool.auto_assign and pool.namespaces == () and pool.service_selector == ()
    for text, inside in [("10.0.0.0", True), ("10.0.0.255", True), ("10.0.1.9", False), ("10.0.1.20", True),
                         ("10.0.2.7", True), ("10.0.2.8", False), ("fd00:1::ff", True), ("fd00:1::100", False)]:
        assert pool.contains(ipaddress.ip_address(text)) is inside, text


def test_selectors_and_auto_assign():
    (pool,) = _pools({"name": "shop", "addresses": ["192.0.2.0/28"], "autoAssign": False,
                      "namespaces": ["shop", "web"], "serviceSelector": {"matchLabels": {"exposure": "public"}}})
    assert pool == LoadBalancerPool("shop", pool.ranges, False, ("shop", "web"), (("exposure", "public"),))
    assert pool.may_serve("shop", {"exposure": "public", "x": "y"})
    assert not pool.may_serve("shop", {"exposure": "private"})
    assert not pool.may_serve("other", {"exposure": "public"})


def test_absent_or_empty_is_no_pools_and_config_parses_them():
    assert parse_pools("loadBalancerPools", None) == () == parse_pools("loadBalancerPools", [])
    config = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "defaultLoadBalancer": True,
                           "loadBalancerPools": [{"name": "a", "addresses": ["192.0.2.0/24"]}]})
    assert config.load_balancer.default and [p.name for p in config.load_balancer.pools] == ["a"]
    with pytest.raises(ConfigError) as err:
        parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"],
                      "loadBalancerPools": [{"name": "a", "addresses": ["192.0.2.1/24"]}]})
    assert err.value.field == "loadBalancerPools[0].addresses[0]"


@pytest.mark.parametrize(("items", "field", "words"), [
    ([{"addresses": ["10.0.0.0/24"]}], "loadBalancerPools[0].name", "is required"),
    ([{"name": "a"}], "loadBalancerPools[0].addresses", "is required"),
    ([{"name": "a", "addresses": []}], "loadBalancerPools[0].addresses", "non-empty list"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"], "avoidBuggyIPs": True}], "loadBalancerPools[0].avoidBuggyIPs",
     "unknown field"),
    ([{"name": "Public", "addresses": ["10.0.0.0/24"]}], "loadBalancerPools[0].name", "DNS-1123 label"),
    ([{"name": "a.b", "addresses": ["10.0.0.0/24"]}], "loadBalancerPools[0].name", "DNS-1123 label"),
    ([{"name": "a" * 64, "addresses": ["10.0.0.0/24"]}], "loadBalancerPools[0].name", "63 characters"),
    ([{"name": "a", "addresses": ["10.0.0.1/24"]}], "loadBalancerPools[0].addresses[0]", "has host bits set"),
    ([{"name": "a", "addresses": ["10.0.0.0/24", "10.0.1.20-10.0.1.10"]}], "loadBalancerPools[0].addresses[1]",
     "the start is after the end"),
    ([{"name": "a", "addresses": ["10.0.1.10-fd00::1"]}], "loadBalancerPools[0].addresses[0]",
     "both ends must be of one IP family"),
    ([{"name": "a", "addresses": ["10.0.1.10-banana"]}], "loadBalancerPools[0].addresses[0]",
     "invalid address range"),
    ([{"name": "a", "addresses": [7]}], "loadBalancerPools[0].addresses[0]", "must be a CIDR or an address range"),
    ([{"name": "a", "addresses": ["10.0.0.0/24", "10.0.0.128-10.0.1.1"]}], "loadBalancerPools[0].addresses",
     "10.0.0.0-10.0.0.255 and 10.0.0.128-10.0.1.1 overlap"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"]}, {"name": "b", "addresses": ["10.0.0.255"]}],
     "loadBalancerPools", "pools 'a' and 'b' overlap: 10.0.0.0-10.0.0.255 and 10.0.0.255"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"]}, {"name": "a", "addresses": ["10.0.1.0/24"]}],
     "loadBalancerPools[1].name", "already used by loadBalancerPools[0]"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"], "autoAssign": "yes"}], "loadBalancerPools[0].autoAssign",
     "true or false"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"], "namespaces": "web"}], "loadBalancerPools[0].namespaces",
     "list of namespace names"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"], "serviceSelector": {"matchExpressions": []}}],
     "loadBalancerPools[0].serviceSelector.matchExpressions", "unknown field (known: matchLabels)"),
    ([{"name": "a", "addresses": ["10.0.0.0/24"], "serviceSelector": {"matchLabels": {"a": 1}}}],
     "loadBalancerPools[0].serviceSelector.matchLabels", "string values"),
    (["a"], "loadBalancerPools[0]", "must be a mapping"),
])
def test_errors_name_the_exact_field(items, field, words):
    got_field, message = _error(*items)
    assert got_field == field and words in message, message


def test_not_a_list():
    with pytest.raises(ConfigError) as err:
        parse_pools("loadBalancerPools", {"name": "a"})
    assert str(err.value) == "loadBalancerPools: must be a list of pools"


def test_different_families_never_overlap_and_adjacent_ranges_are_fine():
    pools = _pools({"name": "a", "addresses": ["0.0.0.0/30", "10.0.0.0-10.0.0.9"]},
                   {"name": "b", "addresses": ["::/126", "10.0.0.10-10.0.0.19"]})
    assert [p.capacity(4) for p in pools] == [14, 10] and pools[1].capacity(6) == 4
