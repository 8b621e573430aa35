"""compacted(): a dict that shrank a lot is copied (its table given back), any other is returned as it is."""

import sys

from bgpnet.compact_dict import compacted
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib


def test_a_dict_emptied_after_a_peak_is_copied_small_with_the_same_content():
    table = {i: str(i) for i in range(100_000)}
    peak = sys.getsizeof(table)
    for i in range(99_000):
        del table[i]
    assert sys.getsizeof(table) == peak  # CPython keeps the table on deletion
    copy = compacted(table)
    assert copy is not table and copy == table
    assert sys.getsizeof(copy) < peak / 50


def test_full_small_or_slightly_shrunk_dicts_are_left_alone():
    full = {i: i for i in range(100_000)}
    assert compacted(full) is full
    small = {i: i for i in range(1000)}
    small.clear()
    assert compacted(small) is small  # below the floor: not worth a copy
    for i in range(30_000):
        del full[i]
    assert compacted(full) is full


def test_the_rib_gives_its_tables_back_after_a_full_withdrawal():
    from ipaddress import ip_address, ip_network

    from bgpnet.model import LearnedRoute
    from bgpnet.policy import ImportPolicy

    peer = ip_address("172.31.0.2")
    policy = ImportPolicy(cluster_cidrs=(ip_network("10.0.0.0/8"),), own_cidrs=(), own_asn=64512)
    prefixes = [Prefix(4, 0x0A800000 + (i << 6), 26) for i in range(50_000)]
    rib = Rib()
    rib.update(peer, [LearnedRoute(peer=peer, prefix=p, next_hop=peer) for p in prefixes], (), policy)
    peak = sys.getsizeof(rib.routes)
    rib.update(peer, (), prefixes, policy)
    assert rib.routes == {} and sys.getsizeof(rib.routes) < peak / 100
