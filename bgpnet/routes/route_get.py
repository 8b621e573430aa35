"""`RawRouteLookup`: `ip route get ADDRESS` as one hand-packed RTM_GETROUTE on a raw NETLINK_ROUTE socket.

The agent needs the kernel's answer for a handful of addresses (peers' source addresses, next hops that are not
directly connected). pyroute2 did this before, but importing it costs the agent ~20 MB of resident memory
(bench/footprint.py) for one request type; the route table already speaks raw rtnetlink
(bgpnet.routes.messages), so this does too. Same answers as pyroute2's `route("get")`: the gateway
(RTA_GATEWAY, absent when directly connected), the preferred source (RTA_PREFSRC) and the outgoing interface
(RTA_OIF); None when the kernel has no unicast route (unreachable, blackhole, prohibit:
ENETUNREACH/EHOSTUNREACH/EINVAL/EACCES or another type). `interface_addresses` dumps an interface's addresses
(bgpnet.routes.interface_addresses) for a multiprotocol session's next hop of the other family.
"""

from __future__ import annotations

import errno as errnos
import socket
import struct
import threading
from ipaddress import ip_address

from bgpnet.model import IPAddress
from bgpnet.routes.interface_addresses import address_dump_request, parse_address_dump
from bgpnet.routes.messages import NLM_F_REQUEST, NLMSG_ERROR, NLMSGHDR, RTATTR, RTM_GETROUTE, RTMSG, RTN_UNICAST
from bgpnet.routes.route_answer import RouteAnswer

RTA_DST = 1
RTA_GATEWAY = 5
RTA_OIF = 4
RTA_PREFSRC = 7
_NO_ROUTE = {errnos.ENETUNREACH, errnos.EHOSTUNREACH, errnos.EINVAL, errnos.EACCES}
_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


def route_get_request(seq: int, destination: IPAddress) -> bytes:
    """RTM_GETROUTE for one destination (a host route: dst_len = address length)."""
    packed = destination.packed
    attr = RTATTR.pack(RTATTR.size + len(packed), RTA_DST) + packed
    body = RTMSG.pack(_FAMILY[destination.version], len(packed) * 8, 0, 0, 0, 0, 0, 0, 0) + attr
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, seq, 0) + body


def parse_route_get_reply(data: bytes, seq: int) -> RouteAnswer | None:
    """The answer to `route_get_request(seq, ...)`; raises OSError for an unexpected kernel error."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, msg_seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        body = offset + NLMSGHDR.size
        if msg_seq == seq:
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, body)[0]
                if code in _NO_ROUTE:
                    return None
                raise OSError(code, f"RTM_GETROUTE: {errnos.errorcode.get(code, code)}")
            family, _dst_len, _src_len, _tos, _table, _proto, _scope, rtype, _flags2 = RTMSG.unpack_from(data, body)
            if rtype != RTN_UNICAST:
                return None
            gateway = source = interface = None
            attr = body + RTMSG.size
            end = offset + length
            while attr + RTATTR.size <= end:
                attr_len, attr_type = RTATTR.unpack_from(data, attr)
                if attr_len < RTATTR.size:
                    break
                payload = data[attr + RTATTR.size:attr + attr_len]
                if attr_type == RTA_GATEWAY:
                    gateway = ip_address(payload)
                elif attr_type == RTA_PREFSRC:
                    source = ip_address(payload)
                elif attr_type == RTA_OIF:
                    interface = struct.unpack_from("=I", payload)[0]
                attr += (attr_len + 3) & ~3
            return RouteAnswer(gateway, source, interface)
        offset += (length + 3) & ~3
    raise OSError(errnos.EPROTO, "no answer to RTM_GETROUTE")


class RawRouteLookup:
    """`KernelLookup` over one raw NETLINK_ROUTE socket (thread-safe; the socket lives in the namespace of the
    thread that created it)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._lock = threading.Lock()
        self._seq = 0

    def route_get(self, destination: IPAddress) -> RouteAnswer | None:
        with self._lock:
            self._seq = self._seq % 0x7FFFFFFF + 1
            seq = self._seq
            self._sock.send(route_get_request(seq, destination))
            while True:
                data = self._sock.recv(65536)
                try:
                    return parse_route_get_reply(data, seq)
                except OSError as exc:
                    if exc.errno != errnos.EPROTO:  # EPROTO: an answer to an older request; read on
                        raise

    def interface_addresses(self, interface: int, version: int) -> list[IPAddress]:
        with self._lock:
            self._seq = self._seq % 0x7FFFFFFF + 1
            seq = self._seq
            self._sock.send(address_dump_request(seq, version))
            found: list[IPAddress] = []
            done = False
            while not done:
                addresses, done = parse_address_dump(self._sock.recv(65536), seq, interface)
                found.extend(addresses)
            return found

    def close(self) -> None:
        self._sock.close()
