"""Decode the BGP messages bgpnet reads from ExaBGP's raw feed: UPDATE and OPEN bodies (pure, no I/O).

ExaBGP hands us each received message as it came off the wire (`receive { packets; }`) together with what
the session negotiated. Decoding the body here costs a few hundred nanoseconds per prefix; ExaBGP's parsed
JSON cost several microseconds per prefix on its side (formatting every prefix as text) and again on ours
(parsing the text back). ExaBGP still validates every message and tears the session down on one it cannot
decode: path attributes and IPv6 NLRI fully, IPv4 NLRI fields for framing only (bgpnet's launcher skips its
per-prefix objects, see exabgp_main). This decoder is strict about the rest (e.g. host bits set) and turns a
message it refuses into a counted BadMessage.

Covered: RFC 4271 UPDATE (withdrawn routes, path attributes, IPv4 NLRI), RFC 4760 MP_REACH/MP_UNREACH for
IPv4/IPv6 unicast, RFC 2545 IPv6 next hops (global + link-local), RFC 6793 2-octet sessions with AS4_PATH,
RFC 1997 communities, RFC 8092 large communities, RFC 4724 End-of-RIB (OPENs: bgpnet.speaker.open_message).
Families bgpnet does not carry are skipped.
ADD-PATH is refused: bgpnet never advertises it, so it cannot be negotiated.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from bgpnet.model import IPAddress, IPNetwork, LearnedRoute, learned_route
from bgpnet.speaker.events import EndOfRib, RoutesReceived
from bgpnet.speaker.interning import address_from_wire, network_from_wire, networks

# (AFI, SAFI) → (name, IP version) for the families whose prefixes bgpnet installs.
_CARRIED = {(1, 1): ("ipv4 unicast", 4), (2, 1): ("ipv6 unicast", 6)}
_NAMES = {(1, 2): "ipv4 multicast", (2, 2): "ipv6 multicast", (1, 4): "ipv4 nlri-mpls",
          (2, 4): "ipv6 nlri-mpls", (1, 128): "ipv4 mpls-vpn", (2, 128): "ipv6 mpls-vpn",
          (1, 133): "ipv4 flow", (2, 133): "ipv6 flow", (25, 70): "l2vpn evpn"}

_ORIGIN, _AS_PATH, _NEXT_HOP, _COMMUNITIES = 1, 2, 3, 8
_MP_REACH, _MP_UNREACH, _AS4_PATH, _LARGE_COMMUNITIES = 14, 15, 17, 32
_AS_SET, _AS_SEQUENCE = 1, 2
_EXTENDED_LENGTH = 0x10


def family_name(afi: int, safi: int) -> str:
    carried = _CARRIED.get((afi, safi))
    if carried:
        return carried[0]
    return _NAMES.get((afi, safi), f"afi {afi} safi {safi}")


def decode_update(peer: IPAddress, body: bytes, asn4: bool) -> RoutesReceived | EndOfRib:
    """One UPDATE body (after the 19-octet header) from `peer` → the routes it announces and withdraws, or the
    End-of-RIB marker it is. `asn4`: the session negotiated 4-octet AS numbers (RFC 6793). Raises ValueError
    with the reason on a malformed body."""
    end = len(body)
    if end < 4:
        raise ValueError(f"UPDATE body of {end} octets")
    withdrawn_end = 2 + int.from_bytes(body[0:2], "big")
    if withdrawn_end + 2 > end:
        raise ValueError("withdrawn routes overrun the UPDATE")
    attributes_end = withdrawn_end + 2 + int.from_bytes(body[withdrawn_end:withdrawn_end + 2], "big")
    if attributes_end > end:
        raise ValueError("path attributes overrun the UPDATE")
    if end == 4:
        return EndOfRib(peer, "ipv4 unicast")  # RFC 4724 §2: an UPDATE with nothing in it

    withdrawn: list[IPNetwork] = _prefixes(body, 2, withdrawn_end, 4)
    attributes = _Attributes(body, withdrawn_end + 2, attributes_end, asn4)
    announced: list[LearnedRoute] = []

    if attributes_end < end:
        if attributes.next_hop is None:
            raise ValueError("IPv4 NLRI without a NEXT_HOP attribute")
        announced = _routes(peer, body, attributes_end, end, 4, attributes.next_hop, attributes)

    if attributes.mp_unreach is not None:
        afi, safi, start, stop = attributes.mp_unreach
        carried = _CARRIED.get((afi, safi))
        if start == stop and not withdrawn and not announced and attributes.mp_reach is None:
            return EndOfRib(peer, family_name(afi, safi))  # RFC 4724 §2 for families other than IPv4 unicast
        if carried:
            withdrawn.extend(_prefixes(body, start, stop, carried[1]))

    if attributes.mp_reach is not None:
        afi, safi, start, stop = attributes.mp_reach
        carried = _CARRIED.get((afi, safi))
        if carried:
            announced.extend(_routes(peer, body, start, stop, carried[1], attributes.mp_next_hop, attributes))

    return RoutesReceived(peer, tuple(announced), tuple(withdrawn))


class _Attributes:
    """The path attributes of one UPDATE that bgpnet uses. MP_REACH/MP_UNREACH are kept as (afi, safi, start,
    stop) spans of their NLRI inside the body, decoded by the caller."""

    __slots__ = ("as_path", "communities", "next_hop", "mp_next_hop", "mp_reach", "mp_unreach")

    def __init__(self, body: bytes, start: int, end: int, asn4: bool) -> None:
        self.as_path: tuple[int, ...] = ()
        self.communities: tuple[str, ...] = ()
        self.next_hop: IPAddress | None = None
        self.mp_next_hop: IPAddress | None = None
        self.mp_reach: tuple[int, int, int, int] | None = None
        self.mp_unreach: tuple[int, int, int, int] | None = None
        as4_path: tuple[int, ...] | None = None
        standard: list[str] = []
        large: list[str] = []
        i = start
        while i < end:
            if i + 3 > end:
                raise ValueError("truncated path attribute header")
            flags, code = body[i], body[i + 1]
            if flags & _EXTENDED_LENGTH:
                if i + 4 > end:
                    raise ValueError("truncated path attribute header")
                length, i = int.from_bytes(body[i + 2:i + 4], "big"), i + 4
            else:
                length, i = body[i + 2], i + 3
            stop = i + length
            if stop > end:
                raise ValueError(f"path attribute {code} overruns the attributes")
            if code == _AS_PATH:
                self.as_path = _as_path(body, i, stop, 4 if asn4 else 2)
            elif code == _AS4_PATH:
                as4_path = _as_path(body, i, stop, 4)
            elif code == _NEXT_HOP:
                if length != 4:
                    raise ValueError(f"NEXT_HOP of {length} octets")
                self.next_hop = address_from_wire(body[i:stop])
            elif code == _COMMUNITIES:
                if length % 4:
                    raise ValueError(f"COMMUNITIES of {length} octets")
                standard = [f"{int.from_bytes(body[j:j + 2], 'big')}:{int.from_bytes(body[j + 2:j + 4], 'big')}"
                            for j in range(i, stop, 4)]
            elif code == _LARGE_COMMUNITIES:
                if length % 12:
                    raise ValueError(f"LARGE_COMMUNITY of {length} octets")
                large = [":".join(str(int.from_bytes(body[k:k + 4], "big")) for k in (j, j + 4, j + 8))
                         for j in range(i, stop, 12)]
            elif code == _MP_REACH:
                self._mp_reach(body, i, stop)
            elif code == _MP_UNREACH:
                if length < 3:
                    raise ValueError(f"MP_UNREACH_NLRI of {length} octets")
                self.mp_unreach = (int.from_bytes(body[i:i + 2], "big"), body[i + 2], i + 3, stop)
            i = stop
        if as4_path is not None and not asn4 and len(as4_path) <= len(self.as_path):
            # RFC 6793 §4.2.3: on a 2-octet session the real numbers of the last hops travel in AS4_PATH,
            # AS_PATH holds AS_TRANS (23456) for them; the leading part of AS_PATH comes from old speakers.
            self.as_path = self.as_path[:len(self.as_path) - len(as4_path)] + as4_path
        if standard or large:
            self.communities = tuple(standard + large)

    def _mp_reach(self, body: bytes, i: int, stop: int) -> None:
        if stop - i < 5:
            raise ValueError(f"MP_REACH_NLRI of {stop - i} octets")
        afi, safi, hop_length = int.from_bytes(body[i:i + 2], "big"), body[i + 2], body[i + 3]
        nlri_start = i + 4 + hop_length + 1  # one reserved octet after the next hop
        if nlri_start > stop:
            raise ValueError("MP_REACH_NLRI next hop overruns the attribute")
        self.mp_reach = (afi, safi, nlri_start, stop)
        if (afi, safi) in _CARRIED:
            self.mp_next_hop = _mp_next_hop(body[i + 4:i + 4 + hop_length])


def _mp_next_hop(hop: bytes) -> IPAddress:
    """RFC 2545 §3: a directly connected IPv6 peer (BIRD, FRR) sends its global address and its link-local
    one. The link-local one cannot be installed without an interface, so the global one is kept; a lone
    link-local next hop is taken as it is."""
    if len(hop) in (4, 16):
        return address_from_wire(hop)
    if len(hop) == 32:
        first, second = address_from_wire(hop[:16]), address_from_wire(hop[16:])
        if isinstance(first, IPv6Address) and first.is_link_local:
            return second
        return first
    raise ValueError(f"MP_REACH_NLRI next hop of {len(hop)} octets")


def _as_path(body: bytes, i: int, stop: int, width: int) -> tuple[int, ...]:
    """AS_SEQUENCE and AS_SET members in order (set members still count for loop detection; order inside a
    set has no meaning). Confederation segments (RFC 5065) are left out, as they are for path length."""
    path: list[int] = []
    while i < stop:
        if i + 2 > stop:
            raise ValueError("truncated AS_PATH segment")
        kind, count = body[i], body[i + 1]
        i += 2
        segment_end = i + count * width
        if segment_end > stop:
            raise ValueError("AS_PATH segment overruns the attribute")
        if kind in (_AS_SEQUENCE, _AS_SET):
            path.extend(int.from_bytes(body[j:j + width], "big") for j in range(i, segment_end, width))
        elif kind not in (3, 4):
            raise ValueError(f"AS_PATH segment type {kind}")
        i = segment_end
    return tuple(path)


def _prefixes(body: bytes, i: int, stop: int, version: int) -> list[IPNetwork]:
    """The prefixes packed between i and stop (RFC 4271 §4.3: length octet, then the significant octets)."""
    out: list[IPNetwork] = []
    append, known = out.append, networks[version].get
    while i < stop:
        following = i + 1 + ((body[i] + 7) >> 3)
        key = body[i:following]
        append(known(key) or network_from_wire(version, key))
        i = following
    if i != stop:  # the last prefix ran past its field (whatever it decoded to is discarded with the UPDATE)
        raise ValueError("prefix overruns its field")
    return out


def _routes(peer: IPAddress, body: bytes, i: int, stop: int, version: int, next_hop: IPAddress | None,
            attributes: _Attributes) -> list[LearnedRoute]:
    if next_hop is None:
        raise ValueError("NLRI without a next hop")
    as_path, communities = attributes.as_path, attributes.communities
    # The tight loop of a full-table transfer: one interned prefix and one LearnedRoute per prefix.
    return [learned_route(peer, prefix, next_hop, as_path, communities) for prefix in _prefixes(body, i, stop, version)]
