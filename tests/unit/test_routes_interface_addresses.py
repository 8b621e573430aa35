"""The other family's next hop of a multiprotocol session: the outgoing interface from RTM_GETROUTE (RTA_OIF),
that interface's usable global addresses from an RTM_GETADDR dump, and the resolver's cached lookup."""

import socket
import struct
from ipaddress import ip_address as A

import pytest

from bgpnet.routes.interface_addresses import (
    IFA_F_TENTATIVE,
    RTM_GETADDR,
    RTM_NEWADDR,
    address_dump_request,
    parse_address_dump,
)
from bgpnet.routes.resolve import NextHopResolver, RouteAnswer
from bgpnet.routes.route_get import parse_route_get_reply

RT_SCOPE_LINK = 253


def rtattr(kind, payload):
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def message(kind, seq, body):
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def newaddr(seq, index, address, *, scope=0, flags=0, local=None, wide_flags=None):
    family = socket.AF_INET if A(address).version == 4 else socket.AF_INET6
    body = struct.pack("=BBBBI", family, 64, flags, scope, index) + rtattr(1, A(address).packed)
    if local is not None:
        body += rtattr(2, A(local).packed)
    if wide_flags is not None:
        body += rtattr(8, struct.pack("=I", wide_flags))
    return message(RTM_NEWADDR, seq, body)


def done(seq):
    return message(3, seq, struct.pack("=i", 0))


def test_dump_request_asks_for_every_address_of_one_family():
    request = address_dump_request(7, 6)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", request)
    assert (length, kind, flags, seq) == (len(request), RTM_GETADDR, 0x301, 7)
    assert request[16] == socket.AF_INET6


def test_only_usable_global_addresses_of_the_interface_in_kernel_order():
    data = (newaddr(5, 3, "fe80::2", scope=RT_SCOPE_LINK)        # link-local: no next hop without interface
            + newaddr(5, 2, "fd00:21:1::2")                      # another interface
            + newaddr(5, 3, "fd00:20:1::9", flags=IFA_F_TENTATIVE)  # still in DAD
            + newaddr(5, 3, "fd00:20:1::8", wide_flags=0x20)      # deprecated, in the 32-bit IFA_FLAGS
            + newaddr(5, 3, "fd00:20:1::2")
            + newaddr(4, 3, "fd00:20:1::7")                      # answer to another request
            + newaddr(5, 3, "fd00:20:1::3"))
    assert parse_address_dump(data, 5, 3) == ([A("fd00:20:1::2"), A("fd00:20:1::3")], False)
    assert parse_address_dump(done(5), 5, 3) == ([], True)


def test_point_to_point_ipv4_address_is_the_local_one_not_the_far_end():
    data = newaddr(1, 4, "172.20.1.1", local="172.20.1.2") + done(1)
    assert parse_address_dump(data, 1, 4) == ([A("172.20.1.2")], True)


def test_dump_error_is_raised():
    with pytest.raises(OSError, match="RTM_GETADDR dump failed"):
        parse_address_dump(message(2, 9, struct.pack("=i", -1)), 9, 1)


def test_route_get_reply_carries_the_outgoing_interface():
    body = (struct.pack("=BBBBBBBBI", socket.AF_INET, 32, 0, 0, 254, 0, 0, 1, 0)
            + rtattr(1, A("172.20.1.1").packed) + rtattr(4, struct.pack("=I", 3))
            + rtattr(7, A("172.20.1.2").packed))
    assert parse_route_get_reply(message(24, 11, body), 11) == RouteAnswer(None, A("172.20.1.2"), 3)


class Kernel:
    def __init__(self):
        self.dumps = []

    def route_get(self, destination):
        return {A("172.20.1.1"): RouteAnswer(None, A("172.20.1.2"), 3),
                A("172.21.1.1"): RouteAnswer(None, A("172.21.1.2"), 4),
                A("172.19.1.1"): RouteAnswer(A("172.20.1.1"), A("172.20.1.2"), 3),
                A("192.0.2.1"): RouteAnswer(A("172.20.1.1"), A("172.20.1.2"), 5)}.get(destination)

    def interface_addresses(self, interface, version):
        self.dumps.append((interface, version))
        return {(3, 6): [A("fd00:20:1::2"), A("fd00:20:1::3")], (4, 6): [A("fd00:21:1::2")]}.get(
            (interface, version), [])

    def close(self):
        pass


def test_each_peer_gets_the_first_address_of_the_other_family_on_its_own_interface_cached():
    kernel = Kernel()
    resolver = NextHopResolver(kernel)
    wanted = {A("172.20.1.1"): 6, A("172.21.1.1"): 6, A("172.19.1.1"): 6, A("192.0.2.1"): 6, A("10.9.9.9"): 6}
    assert resolver.other_family_sources(wanted) == {
        A("172.20.1.1"): A("fd00:20:1::2"),   # ToR 1 on eth0
        A("172.21.1.1"): A("fd00:21:1::2"),   # ToR 2 on eth1: its own link's address, not eth0's
        A("172.19.1.1"): A("fd00:20:1::2"),   # multihop: the interface the session leaves through
    }                                         # 192.0.2.1: no IPv6 on its interface; 10.9.9.9: no route
    assert sorted(kernel.dumps) == [(3, 6), (4, 6), (5, 6)]
    resolver.other_family_sources(wanted)
    assert len(kernel.dumps) == 3
    resolver.invalidate()
    resolver.other_family_sources({A("172.20.1.1"): 6})
    assert len(kernel.dumps) == 4
