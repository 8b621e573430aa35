"""A minimal rtnetlink client: links, addresses and routes packed with `struct`, sent on a raw socket.

pyroute2 costs ~135 ms to import, twenty times a whole reference ADD; the plugin needs a dozen message
kinds, so it packs them itself. Each request asks for an ACK and raises NetlinkError(errno, what) naming the
object on failure; extended ACKs give the kernel's own message ("Nexthop device is not up"). A socket talks
to the network namespace the process was in when the socket was created.
"""


import _socket
from _struct import calcsize, pack, unpack_from

from .addresses import AF_INET, AF_INET6

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x100, 0x200, 0x400, 0x300
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
RT_TABLE_MAIN, RTPROT_BOOT, RTN_UNICAST = 254, 3, 1
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTNH_F_ONLINK = 0x4
IFF_UP = 0x1
_SOL_NETLINK, _NETLINK_CAP_ACK, _NETLINK_EXT_ACK = 270, 10, 11
_NLMSGERR_ATTR_MSG = 1

_HDR = "=IHHII"
_HDR_LEN = calcsize(_HDR)
_IFINFO = "=BxHiII"
_IFADDR = "=BBBBI"
_RTMSG = "=BBBBBBBBI"
_NDMSG = "=BxxxiHBB"


class NetlinkError(OSError):
    """A request the kernel refused; `errno` is the kernel's, `what` names the object."""

    def __init__(self, errno: int, what: str, kernel_msg: str = "") -> None:
        import posix

        text = f"{what}: {posix.strerror(errno)}" + (f" ({kernel_msg})" if kernel_msg else "")
        super().__init__(errno, text)
        self.what = what


def attr(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


def parse_attrs(data: bytes, offset: int) -> dict[int, bytes]:
    out = {}
    while offset + 4 <= len(data):
        length, kind = unpack_from("=HH", data, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


class Link:
    __slots__ = ("index", "name", "flags", "mtu", "mac")

    def __init__(self, index: int, name: str, flags: int, mtu: int, mac: str) -> None:
        self.index, self.name, self.flags, self.mtu, self.mac = index, name, flags, mtu, mac


class Route:
    __slots__ = ("family", "dst", "dst_len", "oif", "gateway", "scope", "table", "flags")

    def __init__(self, family: int, dst: bytes, dst_len: int, oif: int, gateway: bytes, scope: int,
                 table: int, flags: int) -> None:
        self.family, self.dst, self.dst_len, self.oif = family, dst, dst_len, oif
        self.gateway, self.scope, self.table, self.flags = gateway, scope, table, flags


class Netlink:
    """One NETLINK_ROUTE socket in the current network namespace."""

    def __init__(self) -> None:
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)
        try:
            self.sock.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)
            self.sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
        except OSError:
            pass
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------------------
    def request(self, msg_type: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        """Send one message; return the (type, payload) replies of a dump, or [] after a positive ACK."""
        self.seq += 1
        seq = self.seq
        self.sock.sendto(pack(_HDR, _HDR_LEN + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body, (0, 0))
        replies: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HDR_LEN <= len(data):
                length, kind, msg_flags, msg_seq, _ = unpack_from(_HDR, data, offset)
                if length < _HDR_LEN:
                    break
                payload = data[offset + _HDR_LEN:offset + length]
                offset += (length + 3) & ~3
                if msg_seq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    (error,) = unpack_from("=i", payload, 0)
                    if error == 0:
                        return replies
                    raise NetlinkError(-error, what, _extack_message(payload, msg_flags))
                if kind == NLMSG_DONE:
                    return replies
                replies.append((kind, payload))
                if not msg_flags & NLM_F_MULTI:
                    return replies

    # -- links -----------------------------------------------------------------------------------------------
    def create_veth(self, name: str, mac: str, mtu: int, peer_name: str, peer_mac: str, peer_netns_fd: int
                    ) -> None:
        """A veth pair whose peer is created directly inside another namespace, in one message: the peer
        never exists in this namespace, so nothing can see (or race with) it here. Only this end comes up
        now: the kernel opens the peer before the pair is linked, and a veth without its peer refuses to
        come up (ENOTCONN), so the peer is set up from inside its namespace."""
        peer = (pack(_IFINFO, 0, 0, 0, 0, 0) + attr(IFLA_IFNAME, peer_name.encode() + b"\0")
                + attr(IFLA_MTU, pack("=I", mtu)) + attr(IFLA_ADDRESS, mac_bytes(peer_mac))
                + attr(IFLA_NET_NS_FD, pack("=I", peer_netns_fd)))
        linkinfo = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))
        body = (pack(_IFINFO, 0, 0, 0, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, name.encode() + b"\0")
                + attr(IFLA_MTU, pack("=I", mtu)) + attr(IFLA_ADDRESS, mac_bytes(mac))
                + attr(IFLA_LINKINFO, linkinfo))
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {name}/{peer_name}")

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when it does not exist. Deleting one end of a veth deletes both, and
        the kernel drops every route through it."""
        body = pack(_IFINFO, 0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name.encode() + b"\0")
        try:
            self.request(RTM_DELLINK, NLM_F_ACK, body, f"delete link {name}")
        except NetlinkError as exc:
            if exc.errno == 19:  # ENODEV
                return False
            raise
        return True

    def set_up(self, index: int, what: str) -> None:
        self.request(RTM_NEWLINK, NLM_F_ACK, pack(_IFINFO, 0, 0, index, IFF_UP, IFF_UP), what)

    def get_link(self, name: str) -> "Link | None":
        body = pack(_IFINFO, 0, 0, 0, 0, 0) + attr(IFLA_IFNAME, name.encode() + b"\0")
        try:
            replies = self.request(RTM_GETLINK, 0, body, f"get link {name}")
        except NetlinkError as exc:
            if exc.errno == 19:
                return None
            raise
        for kind, payload in replies:
            if kind == RTM_NEWLINK:
                _, _, index, flags, _ = unpack_from(_IFINFO, payload, 0)
                attrs = parse_attrs(payload, calcsize(_IFINFO))
                mtu = unpack_from("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0
                return Link(index, name, flags, mtu, mac_text(attrs.get(IFLA_ADDRESS, b"")))
        return None

    # -- addresses -------------------------------------------------------------------------------------------
    def add_address(self, family: int, index: int, address: bytes, prefixlen: int, what: str) -> None:
        """IFA_F_NODAD: the address is usable at once instead of after ~1 s of duplicate detection; it is
        unique by IPAM, and a pod's only neighbour is the host."""
        body = pack(_IFADDR, family, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, address) + attr(IFA_ADDRESS, address)
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, what)

    def addresses(self, family: int) -> list[tuple[int, bytes, int]]:
        """(ifindex, address, prefixlen) of every address of `family` in this namespace."""
        out = []
        for kind, payload in self.request(RTM_GETADDR, NLM_F_DUMP, pack(_IFADDR, family, 0, 0, 0, 0),
                                          "dump addresses"):
            if kind != RTM_NEWADDR:
                continue
            fam, prefixlen, _, _, index = unpack_from(_IFADDR, payload, 0)
            attrs = parse_attrs(payload, calcsize(_IFADDR))
            address = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS, b"")
            out.append((index, address, prefixlen))
        return out

    def held_addresses(self, family: int) -> set[bytes]:
        """Every address of `family` configured in this namespace: the local address, the peer or prefix
        address and the broadcast address of each (a pod must get none of them). IPv6 link-scope addresses
        are left out unparsed: the kernel gives that scope to fe80::/10 and nothing else, no pod address
        comes from there, and every host veth carries two of them (fe80::1 and its own)."""
        out = set()
        for kind, payload in self.request(RTM_GETADDR, NLM_F_DUMP, pack(_IFADDR, family, 0, 0, 0, 0),
                                          "dump addresses"):
            if kind != RTM_NEWADDR or payload[0] != family or (family == AF_INET6 and payload[3] == RT_SCOPE_LINK):
                continue
            attrs = parse_attrs(payload, calcsize(_IFADDR))
            out.update(attrs[key] for key in (IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST) if key in attrs)
        return out

    # -- neighbours ------------------------------------------------------------------------------------------
    def add_permanent_neighbour(self, family: int, index: int, address: bytes, mac: str, what: str) -> None:
        """A NUD_PERMANENT entry: never probed, never expires, used whatever the other side would answer.
        Replaces an entry the kernel may already have started resolving."""
        body = pack(_NDMSG, family, index, NUD_PERMANENT, 0, 0) + attr(NDA_DST, address)
        body += attr(NDA_LLADDR, mac_bytes(mac))
        self.request(RTM_NEWNEIGH, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body, what)

    def neighbours(self, family: int) -> list[tuple[int, bytes, str, int]]:
        """(ifindex, address, MAC, NUD state) of every neighbour entry of `family` in this namespace."""
        out = []
        for kind, payload in self.request(RTM_GETNEIGH, NLM_F_DUMP, pack(_NDMSG, family, 0, 0, 0, 0),
                                          "dump neighbours"):
            if kind != RTM_NEWNEIGH:
                continue
            fam, index, state, _, _ = unpack_from(_NDMSG, payload, 0)
            attrs = parse_attrs(payload, calcsize(_NDMSG))
            if fam == family and NDA_DST in attrs:
                out.append((index, attrs[NDA_DST], mac_text(attrs.get(NDA_LLADDR, b"")), state))
        return out

    # -- routes ----------------------------------------------------------------------------------------------
    def add_route(self, family: int, dst: bytes | None, dst_len: int, oif: int, gateway: bytes | None,
                  scope: int, onlink: bool, what: str) -> None:
        """Exclusive create: an existing route to the same prefix means the address is already wired
        elsewhere on this node, which must fail rather than be stolen."""
        body = pack(_RTMSG, family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST,
                    RTNH_F_ONLINK if onlink else 0)
        if dst is not None:
            body += attr(RTA_DST, dst)
        if gateway is not None:
            body += attr(RTA_GATEWAY, gateway)
        body += attr(RTA_OIF, pack("=I", oif))
        self.request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, what)

    def routes(self, family: int) -> list[Route]:
        """Every route of `family` in the main table."""
        out = []
        for kind, payload in self.request(RTM_GETROUTE, NLM_F_DUMP, pack(_RTMSG, family, 0, 0, 0, 0, 0, 0, 0, 0),
                                          "dump routes"):
            if kind != RTM_NEWROUTE:
                continue
            fam, dst_len, _, _, table, _, scope, rtype, flags = unpack_from(_RTMSG, payload, 0)
            attrs = parse_attrs(payload, calcsize(_RTMSG))
            if RTA_TABLE in attrs:
                table = unpack_from("=I", attrs[RTA_TABLE])[0]
            if table != RT_TABLE_MAIN or rtype != RTN_UNICAST:
                continue
            oif = unpack_from("=I", attrs[RTA_OIF])[0] if RTA_OIF in attrs else 0
            width = 4 if fam == AF_INET else 16
            out.append(Route(fam, attrs.get(RTA_DST, b"\0" * width), dst_len, oif, attrs.get(RTA_GATEWAY, b""),
                             scope, table, flags))
        return out


def deleted_link_names(data: bytes, msg_type: int) -> list[str]:
    """Names of the links in a buffer of RTM_DELLINK notifications (other messages are skipped)."""
    names = []
    offset = 0
    while offset + _HDR_LEN <= len(data):
        length, kind = unpack_from("=IH", data, offset)
        if length < _HDR_LEN:
            break
        if kind == msg_type:
            attrs = parse_attrs(data[offset + _HDR_LEN:offset + length], calcsize(_IFINFO))
            names.append(attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode("utf-8", "replace"))
        offset += (length + 3) & ~3
    return names


def _extack_message(payload: bytes, flags: int) -> str:
    # With NETLINK_CAP_ACK the error carries only the original header (flag 0x100 = NLM_F_CAPPED); the
    # extended-ACK attributes (flag 0x200 = NLM_F_ACK_TLVS) follow it.
    if not flags & 0x200:
        return ""
    offset = 4 + _HDR_LEN if flags & 0x100 else 4 + unpack_from(_HDR, payload, 4)[0]
    message = parse_attrs(payload, offset).get(_NLMSGERR_ATTR_MSG, b"")
    return message.rstrip(b"\0").decode("utf-8", "replace")


__all__ = ["AF_INET", "AF_INET6", "Netlink", "NetlinkError"]
