"""IPAM usage per pod CIDR, read from bgpnet-cni's store layout; capacity must match the plugin's allocator."""

from ipaddress import ip_network as N

import pytest

from bgpnet.ipam_usage import capacity, count_in_use, read_pools
from cni.addresses import Cidr, parse_ip


@pytest.mark.parametrize("cidr", ["10.244.1.0/24", "10.244.1.0/30", "10.244.1.0/31", "10.244.1.1/32",
                                  "fd00:10:244:1::/64", "fd00::/127", "fd00::1/128"])
def test_capacity_is_what_the_plugin_can_hand_out(cidr):
    network = N(cidr)
    family, value = parse_ip(str(network.network_address))
    plugin = Cidr(family, value, network.prefixlen)
    assert capacity(network) == plugin.last_host() - plugin.first_host() + 1


def test_only_address_files_inside_a_pod_cidr_count():
    names = ["10.244.1.2", "10.244.1.3", "fd00:10:244:1::5", "10.244.2.9", "lock", "last_reserved_ip.0",
             "last_reserved_ip.1", ".tmp123"]
    counts = count_in_use(names, [N("10.244.1.0/24"), N("fd00:10:244:1::/64")])
    assert counts == {N("10.244.1.0/24"): 2, N("fd00:10:244:1::/64"): 1}


def test_read_pools_from_disk_and_a_missing_store(tmp_path):
    store = tmp_path / "bgpnet"
    assert [(p.in_use, p.capacity) for p in read_pools(store, [N("10.244.1.0/24")])] == [(0, 254)]
    store.mkdir()
    for name in ("10.244.1.2", "lock"):
        (store / name).write_text("c\neth0\n")
    (pool,) = read_pools(store, [N("10.244.1.0/24")])
    assert (pool.pod_cidr, pool.in_use, pool.capacity) == ("10.244.1.0/24", 1, 254)
