"""`ip -6 addr show dev IF` as one hand-packed RTM_GETADDR dump (pure: bytes in, values out).

A multiprotocol session announces the prefixes of the family other than its own with an explicit next hop of
that family (an IPv6 pod CIDR over an IPv4 session needs an IPv6 next hop, RFC 2545). The right one is this
node's address of that family on the interface the session leaves through: a directly connected eBGP peer
accepts only a next hop on the shared link (BIRD drops any other as an invalid NEXT_HOP), so with two uplinks
each ToR needs the node's address on its own link. The kernel's route towards the peer names the interface
(RTA_OIF, bgpnet.routes.route_get); this dump gives its addresses.
"""

from __future__ import annotations

import struct
from ipaddress import ip_address

from bgpnet.model import IPAddress
from bgpnet.routes.messages import FAMILY, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSGHDR, RTATTR

RTM_NEWADDR = 20
RTM_GETADDR = 22
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
RT_SCOPE_UNIVERSE = 0
# An address still in duplicate address detection, or that failed it, is not usable yet; a deprecated one
# (preferred lifetime over) should not be handed out for new traffic.
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
_UNUSABLE = IFA_F_DADFAILED | IFA_F_DEPRECATED | IFA_F_TENTATIVE
IFADDRMSG = struct.Struct("=BBBBI")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")


def address_dump_request(seq: int, version: int) -> bytes:
    """RTM_GETADDR dump of every address of one IP version (filtered by interface when parsed)."""
    body = IFADDRMSG.pack(FAMILY[version], 0, 0, 0, 0)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_address_dump(data: bytes, seq: int, interface: int) -> tuple[list[IPAddress], bool]:
    """The usable global (scope universe) addresses of `interface` in one receive buffer of the dump, in the
    kernel's order, and whether the dump is complete (NLMSG_DONE seen). Raises OSError on a kernel error."""
    found: list[IPAddress] = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, msg_seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            break
        body = offset + NLMSGHDR.size
        if msg_seq == seq:
            if kind == NLMSG_DONE:
                return found, True
            if kind == NLMSG_ERROR:
                code = -_I32.unpack_from(data, body)[0]
                raise OSError(code, f"RTM_GETADDR dump failed: errno {code}")
            if kind == RTM_NEWADDR:
                address = _usable_address(data, body, offset + length, interface)
                if address is not None:
                    found.append(address)
        offset += (length + 3) & ~3
    return found, False


def _usable_address(data: bytes, start: int, end: int, interface: int) -> IPAddress | None:
    _family, _prefixlen, flags, scope, index = IFADDRMSG.unpack_from(data, start)
    if index != interface or scope != RT_SCOPE_UNIVERSE:
        return None
    address = local = None
    attr = start + IFADDRMSG.size
    while attr + RTATTR.size <= end:
        attr_len, attr_type = RTATTR.unpack_from(data, attr)
        if attr_len < RTATTR.size:
            break
        payload = data[attr + RTATTR.size:attr + attr_len]
        if attr_type == IFA_ADDRESS:
            address = payload
        elif attr_type == IFA_LOCAL:
            local = payload
        elif attr_type == IFA_FLAGS:
            flags = _U32.unpack_from(payload)[0]  # the full 32 flag bits (ifa_flags holds only the low 8)
        attr += (attr_len + 3) & ~3
    # IFA_LOCAL is the interface's own address; IFA_ADDRESS is the far end on a point-to-point IPv4 link.
    raw = local or address
    if raw is None or flags & _UNUSABLE:
        return None
    return ip_address(raw)
