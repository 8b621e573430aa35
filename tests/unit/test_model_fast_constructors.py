"""The fast constructors on the full-table path build exactly what the dataclass constructors build."""

import dataclasses
import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from bgpnet.model import KernelRoute, LearnedRoute, learned_route, route_via

prefixes = st.builds(lambda a, n: ipaddress.IPv4Network((a, n), strict=False), st.integers(0, 2**32 - 1),
                     st.integers(0, 32))
addresses = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))


def test_field_lists_are_the_ones_the_fast_constructors_fill():
    # A new field on either class must be added to its fast constructor too.
    assert [f.name for f in dataclasses.fields(KernelRoute)] == ["prefix", "gateways"]
    assert [f.name for f in dataclasses.fields(LearnedRoute)] == ["peer", "prefix", "next_hop", "as_path",
                                                                  "communities"]


@given(prefixes, addresses)
def test_route_via_equals_the_constructor(prefix, gateway):
    fast, slow = route_via(prefix, gateway), KernelRoute(prefix, (gateway,))
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow) and vars(fast) == vars(slow)
    assert dataclasses.replace(fast) == slow


@given(addresses, prefixes, addresses, st.lists(st.integers(1, 2**32 - 1), max_size=5),
       st.lists(st.sampled_from(["65000:1", "65000:1:2"]), max_size=3))
def test_learned_route_equals_the_constructor(peer, prefix, next_hop, path, communities):
    fast = learned_route(peer, prefix, next_hop, tuple(path), tuple(communities))
    slow = LearnedRoute(peer, prefix, next_hop, tuple(path), tuple(communities))
    assert fast == slow and hash(fast) == hash(slow) and vars(fast) == vars(slow)
