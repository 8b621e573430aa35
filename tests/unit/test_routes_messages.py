"""Hand-packed route messages decode, with pyroute2's own rtmsg parser, to exactly what was meant; the dump
parser reads kernel-shaped messages back into KernelRoutes; acks are matched by sequence number."""

from __future__ import annotations

import ipaddress

import pytest
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.messages import (
    ADD_FLAGS,
    DELETE_FLAGS,
    NLM_F_ACK,
    NLMSG_ERROR,
    NLMSGHDR,
    REPLACE_FLAGS,
    RT_SCOPE_NOWHERE,
    RTM_DELROUTE,
    RTM_NEWROUTE,
    DumpedRoute,
    DumpParser,
    RoutePacker,
    barrier,
    dump_request,
    iter_errors,
)

ip, net = ipaddress.ip_address, Prefix.parse


def route(prefix: str, *gateways: str) -> KernelRoute:
    return KernelRoute(net(prefix), tuple(ip(g) for g in gateways))


def decode_all(buf: bytes) -> list[rtmsg]:
    messages, offset = [], 0
    while offset < len(buf):
        msg = rtmsg(buf, offset=offset)
        msg.decode()
        messages.append(msg)
        offset += msg["header"]["length"]
    return messages


def gateways_of(msg: rtmsg) -> list[str]:
    multipath = msg.get_attr("RTA_MULTIPATH")
    if multipath:
        return [nh.get_attr("RTA_GATEWAY") or nh.get_attr("RTA_VIA")["addr"] for nh in multipath]
    gateway = msg.get_attr("RTA_GATEWAY")
    return [gateway] if gateway else [msg.get_attr("RTA_VIA")["addr"]]


@pytest.mark.parametrize("kernel_route", [
    route("10.1.2.0/24", "172.31.0.2"),
    route("10.1.3.0/26", "172.31.0.3", "172.31.0.2"),
    route("0.0.0.0/0", "172.31.0.9"),
    route("10.9.9.9/32", "172.31.0.2", "172.31.0.3", "172.31.0.4"),
    route("fd00:10::/64", "fd00:ff::2"),
    route("fd00:11::/56", "fd00:ff::2", "fd00:ff::3"),
    route("10.7.0.0/24", "fd00:ff::2"),  # RFC 5549: IPv4 prefix, IPv6 next hop (RTA_VIA)
], ids=str)
@pytest.mark.parametrize("flags", [ADD_FLAGS, REPLACE_FLAGS], ids=["add", "replace"])
def test_newroute_decodes_with_pyroute2_to_the_same_route(kernel_route, flags):
    buf = bytearray()
    next_seq = RoutePacker(179, 254, ack=False).newroutes(buf, [kernel_route], 41, flags)
    [msg] = decode_all(bytes(buf))
    assert next_seq == 42
    assert msg["header"]["type"] == RTM_NEWROUTE
    assert msg["header"]["flags"] == flags
    assert msg["header"]["sequence_number"] == 41
    assert msg["header"]["length"] == len(buf)
    assert (msg["family"], msg["dst_len"], msg["proto"], msg["table"], msg["type"], msg["scope"]) == (
        2 if kernel_route.prefix.version == 4 else 10, kernel_route.prefix.length, 179, 254, 1, 0)
    assert (msg.get_attr("RTA_DST") or "0.0.0.0") == str(kernel_route.prefix.network_address)
    assert [ip(g) for g in gateways_of(msg)] == list(kernel_route.gateways)


def test_many_routes_pack_back_to_back_with_consecutive_sequence_numbers_and_ack_flag():
    routes = [route(f"10.{i // 256}.{i % 256}.0/24", "172.31.0.2" if i % 3 else "172.31.0.3") for i in range(600)]
    routes.append(route("fd00:1::/64", "fd00:ff::2", "fd00:ff::3"))
    buf = bytearray()
    end = RoutePacker(179, 254, ack=True).newroutes(buf, routes, 1000, ADD_FLAGS)
    messages = decode_all(bytes(buf))
    assert end == 1000 + len(routes)
    assert [m["header"]["sequence_number"] for m in messages] == list(range(1000, end))
    assert all(m["header"]["flags"] == ADD_FLAGS | NLM_F_ACK for m in messages)
    assert [(net(f"{m.get_attr('RTA_DST')}/{m['dst_len']}"), [ip(g) for g in gateways_of(m)])
            for m in messages] == [(r.prefix, list(r.gateways)) for r in routes]


def test_table_above_255_goes_in_rta_table():
    buf = bytearray()
    RoutePacker(179, 1000, ack=False).newroutes(buf, [route("10.1.0.0/24", "172.31.0.2")], 1, ADD_FLAGS)
    [msg] = decode_all(bytes(buf))
    assert msg["table"] == 252
    assert msg.get_attr("RTA_TABLE") == 1000


def test_delroute_names_protocol_any_scope_and_optional_metric():
    buf = bytearray()
    RoutePacker(179, 254, ack=False).delroutes(buf, [(net("10.1.0.0/24"), None), (net("fd00::/64"), 2048)], 5)
    first, second = decode_all(bytes(buf))
    for msg in (first, second):
        assert msg["header"]["type"] == RTM_DELROUTE
        assert msg["header"]["flags"] == DELETE_FLAGS
        assert (msg["proto"], msg["table"], msg["scope"]) == (179, 254, RT_SCOPE_NOWHERE)
    assert first.get_attr("RTA_DST") == "10.1.0.0" and first.get_attr("RTA_PRIORITY") is None
    assert second.get_attr("RTA_DST") == "fd00::" and second.get_attr("RTA_PRIORITY") == 2048


def test_dump_request_filters_on_protocol_and_table():
    [msg] = decode_all(dump_request(3, 10, 179, 254))
    assert msg["header"]["flags"] == 0x301  # NLM_F_REQUEST | NLM_F_DUMP
    assert (msg["family"], msg["proto"], msg["table"]) == (10, 179, 254)


def kernel_answer(packed: bytes, *, proto: int = 179, table: int = 254, priority: int | None = None) -> bytes:
    """Turn a packed request into what a dump returns: same attributes, plus the kernel's extras."""
    msg = rtmsg(packed)
    msg.decode()
    answer = rtmsg()
    answer["header"]["type"] = RTM_NEWROUTE
    for key in ("family", "dst_len", "type", "scope"):
        answer[key] = msg[key]
    answer["proto"], answer["table"] = proto, min(table, 252)
    answer["attrs"] = [a for a in msg["attrs"] if a[0] != "RTA_TABLE"] + [("RTA_TABLE", table), ("RTA_OIF", 3)]
    if priority is not None:
        answer["attrs"].append(("RTA_PRIORITY", priority))
    answer.encode()
    return bytes(answer.data)


def done() -> bytes:
    return NLMSGHDR.pack(20, 3, 2, 0, 0) + b"\0\0\0\0"


def test_dump_parser_reads_back_what_was_packed_and_filters_others():
    wanted = [route("10.1.0.0/24", "172.31.0.2"), route("10.2.0.0/24", "172.31.0.3", "172.31.0.2"),
              route("fd00:5::/64", "fd00:ff::3", "fd00:ff::2"), route("10.7.0.0/24", "fd00:ff::2")]
    stream = b""
    for kernel_route in wanted:
        buf = bytearray()
        RoutePacker(179, 254, ack=False).newroutes(buf, [kernel_route], 1, ADD_FLAGS)
        metric = 1024 if kernel_route.prefix.version == 6 else None
        stream += kernel_answer(bytes(buf), priority=metric)
    foreign = bytearray()
    RoutePacker(4, 254, ack=False).newroutes(foreign, [route("10.3.0.0/24", "172.31.0.2")], 1, ADD_FLAGS)
    stream += kernel_answer(bytes(foreign), proto=4)
    other_table = bytearray()
    RoutePacker(179, 254, ack=False).newroutes(other_table, [route("10.4.0.0/24", "172.31.0.2")], 1, ADD_FLAGS)
    stream += kernel_answer(bytes(other_table), table=100)
    stray = bytearray()
    RoutePacker(179, 254, ack=False).newroutes(stray, [route("10.1.0.0/24", "172.31.0.9")], 1, ADD_FLAGS)
    stream += kernel_answer(bytes(stray), priority=50) + done()

    parser = DumpParser(179, 254)
    parser.feed(stream, len(stream))

    assert parser.done
    assert parser.routes == [DumpedRoute(wanted[0], 0), DumpedRoute(wanted[1], 0), DumpedRoute(wanted[2], 1024),
                             DumpedRoute(wanted[3], 0), DumpedRoute(route("10.1.0.0/24", "172.31.0.9"), 50)]


def test_dump_parser_raises_the_kernels_error():
    error = NLMSGHDR.pack(36, NLMSG_ERROR, 0, 1, 0) + (-22).to_bytes(4, "little", signed=True) + bytes(16)
    with pytest.raises(OSError) as caught:
        DumpParser(179, 254).feed(error, len(error))
    assert caught.value.errno == 22


def test_iter_errors_yields_sequence_and_errno_per_answer():
    def answer(seq: int, errno: int) -> bytes:
        return NLMSGHDR.pack(36, NLMSG_ERROR, 0, seq, 0) + (-errno).to_bytes(4, "little", signed=True) + bytes(16)

    stream = answer(7, 101) + answer(9, 17) + answer(10, 0)
    assert list(iter_errors(stream, len(stream))) == [(7, 101), (9, 17), (10, 0)]


def test_barrier_is_a_noop_that_asks_for_an_ack():
    assert NLMSGHDR.unpack(barrier(10)) == (16, 1, 0x1 | NLM_F_ACK, 10, 0)  # NLMSG_NOOP, REQUEST|ACK


def test_dump_parser_returns_the_known_object_for_an_unchanged_route_only():
    same, moved = route("10.1.0.0/24", "172.31.0.2", "172.31.0.3"), route("10.2.0.0/24", "172.31.0.2")
    stream = b""
    for kernel_route in (same, route("10.2.0.0/24", "172.31.0.3")):
        buf = bytearray()
        RoutePacker(179, 254, ack=False).newroutes(buf, [kernel_route], 1, ADD_FLAGS)
        stream += kernel_answer(bytes(buf))
    parser = DumpParser(179, 254, known=[same, moved])
    parser.feed(stream, len(stream))
    first, second = (dumped.route for dumped in parser.routes)
    assert first is same
    assert second is not moved and second == route("10.2.0.0/24", "172.31.0.3")


def test_dump_parser_skips_answers_to_other_requests_and_notes_interruption():
    buf = bytearray()
    RoutePacker(179, 254, ack=False).newroutes(buf, [route("10.1.0.0/24", "172.31.0.2")], 1, ADD_FLAGS)
    answer = bytearray(kernel_answer(bytes(buf)))
    stale_error = NLMSGHDR.pack(36, NLMSG_ERROR, 0, 6, 0) + (-101).to_bytes(4, "little", signed=True) + bytes(16)
    NLMSGHDR.pack_into(answer, 0, len(answer), RTM_NEWROUTE, 0x2 | 0x10, 7, 0)  # NLM_F_MULTI|NLM_F_DUMP_INTR
    stream = stale_error + bytes(answer) + NLMSGHDR.pack(20, 3, 2, 7, 0) + b"\0\0\0\0"
    parser = DumpParser(179, 254)
    parser.seq = 7
    parser.feed(stream, len(stream))
    assert parser.done and parser.interrupted
    assert [d.route for d in parser.routes] == [route("10.1.0.0/24", "172.31.0.2")]
