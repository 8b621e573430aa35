"""Decode the UPDATEs bgpnet reads from ExaBGP's raw feed, with an RFC 7606 verdict for each (pure, no I/O).

ExaBGP hands us each received message as it came off the wire (`receive { packets; }`) together with what
the session negotiated, *before* it parses the message itself. A peer can send any byte, so every outcome of
decoding is a value, never an exception: routes announced and withdrawn, End-of-RIB, or one of the three
actions of RFC 7606 (Revised Error Handling for BGP UPDATE Messages), the way BIRD's `proto/bgp/attrs.c`
and GoBGP's `validate.go` do it:

- treat-as-withdraw: an attribute the routes depend on is malformed or missing, but every prefix of the
  message can still be located; all of them are withdrawn (a stale path must not survive a re-announcement
  we cannot read), none announced;
- attribute-discard: a malformed attribute that changes nothing for forwarding (AGGREGATOR, AS4_PATH, ...)
  is ignored and the message processed;
- session-reset: the prefixes cannot be located (framing of the message, of a prefix, of MP_REACH/MP_UNREACH),
  so nothing in the message can be trusted: the agent drops everything the peer sent and ExaBGP tears the
  session down.
When one message has several errors, the strongest action wins (§3(h)); of an attribute sent twice only the
first copy counts (§3(g)), except MP_REACH/MP_UNREACH, whose duplicates reset the session.

bgpnet must never act on a message that ExaBGP rejects (ExaBGP sends a NOTIFICATION after we have read the
message), so where ExaBGP 4.2.25 is stricter than RFC 7606 asks — a family that was not negotiated, MP_REACH
without NLRI or with a non-zero reserved octet — this decoder resets too: the session goes down either way,
and no route from such a message reaches the kernel in between. tests/unit/test_speaker_wire_differential.py
checks that against ExaBGP's own decoder on generated messages.

Covered: RFC 4271 UPDATE, RFC 4760 MP_REACH/MP_UNREACH for IPv4/IPv6 unicast, RFC 2545 IPv6 next hops
(global + link-local), RFC 6793 AS4_PATH on 2-octet sessions, RFC 7607 (AS 0), RFC 1997/4360/8092
communities, RFC 4456 ORIGINATOR_ID/CLUSTER_LIST lengths, RFC 4724 End-of-RIB. OPENs: open_message.
"""

from __future__ import annotations

from collections.abc import Collection
from ipaddress import IPv6Address, ip_address

from bgpnet.model import IPAddress, LearnedRoute
from bgpnet.prefix import NETMASK, Prefix
from bgpnet.speaker.events import (
    ATTRIBUTE_DISCARD,
    SESSION_RESET,
    TREAT_AS_WITHDRAW,
    EndOfRib,
    Malformed,
    RoutesReceived,
    SessionReset,
)

# (AFI, SAFI) → (name, IP version) for the families whose prefixes bgpnet installs.
_CARRIED = {(1, 1): ("ipv4 unicast", 4), (2, 1): ("ipv6 unicast", 6)}
_NAMES = {(1, 2): "ipv4 multicast", (2, 2): "ipv6 multicast", (1, 4): "ipv4 nlri-mpls",
          (2, 4): "ipv6 nlri-mpls", (1, 128): "ipv4 mpls-vpn", (2, 128): "ipv6 mpls-vpn",
          (1, 133): "ipv4 flow", (2, 133): "ipv6 flow", (25, 70): "l2vpn evpn"}

ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR, COMMUNITIES = 1, 2, 3, 4, 5, 6, 7, 8
ORIGINATOR_ID, CLUSTER_LIST, MP_REACH, MP_UNREACH, EXTENDED_COMMUNITIES = 9, 10, 14, 15, 16
AS4_PATH, AS4_AGGREGATOR, IPV6_EXTENDED_COMMUNITIES, LARGE_COMMUNITIES = 17, 18, 25, 32
# Attributes ExaBGP 4.2.25 decodes (and resets the session on when it cannot) but bgpnet neither needs nor
# validates: a route carrying one is withdrawn rather than installed on a guess about ExaBGP's verdict. No pod
# network peer has a reason to send them on a unicast session.
_UNVALIDATED = {22: "PMSI_TUNNEL", 26: "AIGP", 29: "BGP-LS", 40: "BGP Prefix-SID"}
_AS_SET, _AS_SEQUENCE = 1, 2
_OPTIONAL, _TRANSITIVE, _EXTENDED_LENGTH = 0x80, 0x40, 0x10

# The Optional and Transitive flags each known attribute must carry (RFC 4271 §5, and the RFCs above).
_FLAGS = {ORIGIN: _TRANSITIVE, AS_PATH: _TRANSITIVE, NEXT_HOP: _TRANSITIVE, MED: _OPTIONAL,
          LOCAL_PREF: _TRANSITIVE, ATOMIC_AGGREGATE: _TRANSITIVE, AGGREGATOR: _OPTIONAL | _TRANSITIVE,
          COMMUNITIES: _OPTIONAL | _TRANSITIVE, ORIGINATOR_ID: _OPTIONAL, CLUSTER_LIST: _OPTIONAL,
          MP_REACH: _OPTIONAL, MP_UNREACH: _OPTIONAL, EXTENDED_COMMUNITIES: _OPTIONAL | _TRANSITIVE,
          AS4_PATH: _OPTIONAL | _TRANSITIVE, AS4_AGGREGATOR: _OPTIONAL | _TRANSITIVE,
          IPV6_EXTENDED_COMMUNITIES: _OPTIONAL | _TRANSITIVE, LARGE_COMMUNITIES: _OPTIONAL | _TRANSITIVE}
# Malformed, these only lose the attribute (RFC 7606 §7.6, §7.7; RFC 6793 §6); every other known one withdraws.
_DISCARDABLE = frozenset({ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR})
# Fixed lengths (RFC 7606 §7.1, 7.3-7.5, 7.9) and "non-zero multiple of" lengths (§7.8, 7.10, 7.14; RFC 8092).
_LENGTH = {ORIGIN: 1, NEXT_HOP: 4, MED: 4, LOCAL_PREF: 4, ATOMIC_AGGREGATE: 0, ORIGINATOR_ID: 4}
_MULTIPLE = {COMMUNITIES: 4, CLUSTER_LIST: 4, EXTENDED_COMMUNITIES: 8, IPV6_EXTENDED_COMMUNITIES: 20,
             LARGE_COMMUNITIES: 12}
_STRENGTH = {ATTRIBUTE_DISCARD: 1, TREAT_AS_WITHDRAW: 2, SESSION_RESET: 3}
_OFFENDING_MAX = 64


class _Reset(Exception):
    """Internal: the prefixes of this message cannot be located (caught in decode_update, never escapes)."""

    def __init__(self, reason: str, offending: bytes = b"") -> None:
        super().__init__(reason)
        self.malformed = Malformed(SESSION_RESET, reason, bytes(offending[:_OFFENDING_MAX]))


def family_name(afi: int, safi: int) -> str:
    carried = _CARRIED.get((afi, safi))
    if carried:
        return carried[0]
    return _NAMES.get((afi, safi), f"afi {afi} safi {safi}")


def decode_update(peer: IPAddress, body: bytes, asn4: bool, families: Collection[str] | None = None, *,
                  extended_next_hop: bool = False) -> RoutesReceived | EndOfRib | SessionReset:
    """One UPDATE body (after the 19-octet header) from `peer` → what it announces and withdraws (with the
    RFC 7606 verdict when it is malformed), the End-of-RIB marker it is, or the session reset it calls for.
    `asn4`: the session negotiated 4-octet AS numbers (RFC 6793); `families`: the negotiated families by
    name (None: not checked); `extended_next_hop`: RFC 8950 was negotiated (IPv4 routes may carry an IPv6 next
    hop). Never raises."""
    try:
        return _decode(peer, body, asn4, families, extended_next_hop)
    except _Reset as reset:
        return SessionReset(peer, reset.malformed)


def _decode(peer: IPAddress, body: bytes, asn4: bool, families: Collection[str] | None,
            extended_next_hop: bool) -> RoutesReceived | EndOfRib:
    end = len(body)
    if end < 4:
        raise _Reset(f"UPDATE body of {end} octets", body)
    withdrawn_end = 2 + int.from_bytes(body[0:2], "big")
    if withdrawn_end + 2 > end:
        raise _Reset("withdrawn routes overrun the UPDATE", body[0:2])
    attributes_end = withdrawn_end + 2 + int.from_bytes(body[withdrawn_end:withdrawn_end + 2], "big")
    if attributes_end > end:
        raise _Reset("path attributes overrun the UPDATE", body[withdrawn_end:withdrawn_end + 2])
    if end == 4:
        return EndOfRib(peer, "ipv4 unicast")  # RFC 4724 §2: an UPDATE with nothing in it

    withdrawn: list[Prefix] = _prefixes(body, 2, withdrawn_end, 4)
    nlri = _prefixes(body, attributes_end, end, 4)
    attributes = _Attributes(body, withdrawn_end + 2, attributes_end, asn4, extended_next_hop)

    unreach = attributes.mp_unreach
    reach = attributes.mp_reach
    for afi, safi, _, _ in (x for x in (unreach, reach) if x is not None):
        if families is not None and family_name(afi, safi) not in families:
            # RFC 4760 would let us ignore it; ExaBGP 4.2.25 resets the session (Notify 3/0), so do we.
            raise _Reset(f"{family_name(afi, safi)} was not negotiated")
    if unreach is not None:
        afi, safi, start, stop = unreach
        if start == stop and not withdrawn and not nlri and reach is None and attributes.malformed is None:
            return EndOfRib(peer, family_name(afi, safi))  # RFC 4724 §2 for families other than IPv4 unicast
        if (afi, safi) in _CARRIED:
            withdrawn.extend(_prefixes(body, start, stop, _CARRIED[(afi, safi)][1]))
    reach_prefixes: list[Prefix] = []
    if reach is not None:
        afi, safi, start, stop = reach
        if (afi, safi) in _CARRIED:
            reach_prefixes = _prefixes(body, start, stop, _CARRIED[(afi, safi)][1])

    if nlri or reach_prefixes:
        attributes.check_mandatory(bool(nlri))
    malformed = attributes.malformed
    if malformed is not None and malformed.action == TREAT_AS_WITHDRAW:
        located = withdrawn + nlri + reach_prefixes
        if attributes.framing_error and not located:
            # RFC 7606 §5.2: treat-as-withdraw needs NLRI to withdraw; a framing error hiding them resets.
            raise _Reset(malformed.reason, malformed.offending)
        return RoutesReceived(peer, (), tuple(located), malformed)

    announced: list[LearnedRoute] = []
    if nlri and attributes.next_hop is None:  # cannot happen: check_mandatory withdrew them; kept as a guard
        return RoutesReceived(peer, (), tuple(withdrawn + nlri + reach_prefixes),
                              Malformed(TREAT_AS_WITHDRAW, "NEXT_HOP missing"))
    if nlri:
        announced = _routes(peer, nlri, attributes.next_hop, attributes)  # type: ignore[arg-type]
    if reach_prefixes:
        announced.extend(_routes(peer, reach_prefixes, attributes.mp_next_hop, attributes))  # type: ignore[arg-type]
    return RoutesReceived(peer, tuple(announced), tuple(withdrawn), malformed)


class _Attributes:
    """The path attributes of one UPDATE: what bgpnet uses, and the strongest RFC 7606 verdict on them.
    MP_REACH/MP_UNREACH are kept as (afi, safi, start, stop) spans of their NLRI inside the body."""

    __slots__ = ("as_path", "communities", "next_hop", "mp_next_hop", "mp_reach", "mp_unreach", "malformed",
                 "framing_error", "_seen", "_asn4", "_extended_next_hop")

    def __init__(self, body: bytes, start: int, end: int, asn4: bool, extended_next_hop: bool) -> None:
        self.as_path: tuple[int, ...] = ()
        self.communities: tuple[str, ...] = ()
        self.next_hop: IPAddress | None = None
        self.mp_next_hop: IPAddress | None = None
        self.mp_reach: tuple[int, int, int, int] | None = None
        self.mp_unreach: tuple[int, int, int, int] | None = None
        self.malformed: Malformed | None = None
        self.framing_error = False
        self._seen: set[int] = set()
        self._asn4 = asn4
        self._extended_next_hop = extended_next_hop
        as4_path: tuple[int, ...] | None = None
        standard: list[str] = []
        large: list[str] = []
        i = start
        while i < end:
            header = 4 if body[i] & _EXTENDED_LENGTH else 3
            if i + header > end:
                self._framing("truncated path attribute header", body[i:end])
                break
            flags, code = body[i], body[i + 1]
            length = int.from_bytes(body[i + 2:i + 4], "big") if header == 4 else body[i + 2]
            i += header
            stop = i + length
            if stop > end:  # RFC 7606 §4: Total Attribute Length still locates the NLRI field
                self._framing(f"path attribute {code} overruns the attributes", body[i - header:end])
                break
            value = body[i:stop]
            i = stop
            if code in self._seen:
                if code in (MP_REACH, MP_UNREACH):
                    raise _Reset(f"{'MP_REACH_NLRI' if code == MP_REACH else 'MP_UNREACH_NLRI'} twice", value)
                continue  # RFC 7606 §3(g): only the first copy counts
            self._seen.add(code)
            expected = _FLAGS.get(code)
            if code in _UNVALIDATED:
                self._error(TREAT_AS_WITHDRAW, f"attribute {code} ({_UNVALIDATED[code]}) not accepted", value)
                continue
            if expected is None:
                if not flags & _OPTIONAL:
                    self._error(TREAT_AS_WITHDRAW, f"unrecognised well-known attribute {code}", value)
                continue  # unrecognised optional attribute: not ours to judge
            if flags & (_OPTIONAL | _TRANSITIVE) != expected and code not in (MP_REACH, MP_UNREACH):
                # §3(c): wrong flags make the attribute malformed. MP_REACH/MP_UNREACH are still decoded (the
                # prefixes must be located to withdraw them) and then withdrawn.
                self._error(TREAT_AS_WITHDRAW if code not in _DISCARDABLE else ATTRIBUTE_DISCARD,
                            f"attribute {code} with flags 0x{flags:02x}", value)
                continue
            if code == MP_REACH:
                self._mp_reach(value, i - length)
                if flags & (_OPTIONAL | _TRANSITIVE) != expected:
                    self._error(TREAT_AS_WITHDRAW, f"MP_REACH_NLRI with flags 0x{flags:02x}", value)
            elif code == MP_UNREACH:
                if length < 3:
                    raise _Reset(f"MP_UNREACH_NLRI of {length} octets", value)
                self.mp_unreach = (int.from_bytes(value[0:2], "big"), value[2], i - length + 3, i)
                if flags & (_OPTIONAL | _TRANSITIVE) != expected:
                    self._error(TREAT_AS_WITHDRAW, f"MP_UNREACH_NLRI with flags 0x{flags:02x}", value)
            elif code in _LENGTH and length != _LENGTH[code]:
                self._error(ATTRIBUTE_DISCARD if code in _DISCARDABLE else TREAT_AS_WITHDRAW,
                            f"attribute {code} of {length} octets", value)
            elif code in _MULTIPLE and (length == 0 or length % _MULTIPLE[code]):
                self._error(TREAT_AS_WITHDRAW, f"attribute {code} of {length} octets", value)
            elif code == ORIGIN:
                if value[0] > 2:
                    self._error(TREAT_AS_WITHDRAW, f"ORIGIN value {value[0]}", value)
            elif code == AS_PATH:
                path, problem = _as_path(value, 4 if asn4 else 2)
                if problem:
                    self._error(TREAT_AS_WITHDRAW, f"AS_PATH: {problem}", value)
                self.as_path = path
            elif code == AS4_PATH:
                path, problem = _as_path(value, 4)
                if problem == "AS 0":  # RFC 7607 → RFC 6793 §6: discard
                    self._error(ATTRIBUTE_DISCARD, "AS4_PATH: AS 0", value)
                elif problem:
                    # RFC 6793 §6 asks for attribute-discard; ExaBGP 4.2.25 resets (Notify 3/11), so do we.
                    raise _Reset(f"AS4_PATH: {problem}", value)
                elif not asn4:  # on a 4-octet session AS4_PATH means nothing (RFC 6793 §4.1) and is ignored
                    as4_path = path
            elif code in (AGGREGATOR, AS4_AGGREGATOR):
                width = 4 if asn4 or code == AS4_AGGREGATOR else 2
                if length < 4:
                    # RFC 7606 §7.7 asks for attribute-discard; ExaBGP 4.2.25 cannot unpack it and resets.
                    raise _Reset(f"attribute {code} of {length} octets", value)
                if length != width + 4 or not int.from_bytes(value[:width], "big"):
                    self._error(ATTRIBUTE_DISCARD, f"attribute {code} of {length} octets or AS 0", value)
            elif code == NEXT_HOP:
                if _bogus_next_hop(value):
                    # RFC 4271 §6.3: a semantically incorrect NEXT_HOP; the routes are ignored, no NOTIFICATION.
                    self._error(TREAT_AS_WITHDRAW, f"NEXT_HOP {'.'.join(map(str, value))}", value)
                else:
                    self.next_hop = ip_address(value)
            elif code == COMMUNITIES:
                standard = [f"{int.from_bytes(value[j:j + 2], 'big')}:{int.from_bytes(value[j + 2:j + 4], 'big')}"
                            for j in range(0, length, 4)]
            elif code == LARGE_COMMUNITIES:
                large = [":".join(str(int.from_bytes(value[k:k + 4], "big")) for k in (j, j + 4, j + 8))
                         for j in range(0, length, 12)]
        if as4_path is not None and len(as4_path) <= len(self.as_path):
            # RFC 6793 §4.2.3: on a 2-octet session the real numbers of the last hops travel in AS4_PATH,
            # AS_PATH holds AS_TRANS (23456) for them; the leading part of AS_PATH comes from old speakers.
            self.as_path = self.as_path[:len(self.as_path) - len(as4_path)] + as4_path
        if standard or large:
            self.communities = tuple(standard + large)

    def _error(self, action: str, reason: str, offending: bytes) -> None:
        """Keep the strongest verdict (RFC 7606 §3(h)); the first reason of that strength names it."""
        if self.malformed is None or _STRENGTH[action] > _STRENGTH[self.malformed.action]:
            self.malformed = Malformed(action, reason, bytes(offending[:_OFFENDING_MAX]))

    def _framing(self, reason: str, offending: bytes) -> None:
        self.framing_error = True
        self._error(TREAT_AS_WITHDRAW, reason, offending)

    def check_mandatory(self, ipv4_nlri: bool) -> None:
        """RFC 7606 §3(d): a message announcing routes without a well-known mandatory attribute is withdrawn.
        NEXT_HOP is mandatory only with NLRI in the IPv4 NLRI field (RFC 4760 §3)."""
        if self.framing_error:
            return  # the attributes after the error were not read: "missing" would be a guess
        for code, name in ((ORIGIN, "ORIGIN"), (AS_PATH, "AS_PATH")):
            if code not in self._seen:
                self._error(TREAT_AS_WITHDRAW, f"{name} missing", b"")
        if ipv4_nlri and NEXT_HOP not in self._seen:
            self._error(TREAT_AS_WITHDRAW, "NEXT_HOP missing", b"")

    def _mp_reach(self, value: bytes, start: int) -> None:
        """MP_REACH_NLRI (RFC 4760 §3): AFI, SAFI, next hop length and next hop, a reserved octet, NLRI. A next
        hop whose length does not fit its family hides where the NLRI start: session reset (RFC 7606 §7.11)."""
        if len(value) < 5:
            raise _Reset(f"MP_REACH_NLRI of {len(value)} octets", value)
        afi, safi, hop_length = int.from_bytes(value[0:2], "big"), value[2], value[3]
        nlri_start = 4 + hop_length + 1
        if nlri_start > len(value):
            raise _Reset("MP_REACH_NLRI next hop overruns the attribute", value)
        carried = _CARRIED.get((afi, safi))
        if carried is None:
            self.mp_reach = (afi, safi, start + nlri_start, start + len(value))
            return
        # IPv4 unicast: 4 octets, or an IPv6 next hop (16/32) where RFC 8950 was negotiated (as ExaBGP checks).
        ipv4_lengths = (4, 16, 32) if self._extended_next_hop else (4,)
        if hop_length not in (ipv4_lengths if carried[1] == 4 else (16, 32)):
            raise _Reset(f"{carried[0]} next hop of {hop_length} octets", value)
        if value[nlri_start - 1]:
            raise _Reset("MP_REACH_NLRI reserved octet not zero", value)  # ExaBGP 4.2.25 resets on it
        if nlri_start == len(value):
            raise _Reset("MP_REACH_NLRI without NLRI", value)  # ExaBGP 4.2.25 resets on it
        self.mp_reach = (afi, safi, start + nlri_start, start + len(value))
        self.mp_next_hop = _mp_next_hop(value[4:4 + hop_length])


def _bogus_next_hop(packed: bytes) -> bool:
    """0.0.0.0/8, loopback, multicast and class E are never a gateway (RFC 4271 §6.3 "semantically incorrect")."""
    return packed[0] in (0, 127) or packed[0] >= 224


def _mp_next_hop(hop: bytes) -> IPAddress:
    """RFC 2545 §3: a directly connected IPv6 peer (BIRD, FRR) sends its global address and its link-local
    one. The link-local one cannot be installed without an interface, so the global one is kept; a lone
    link-local next hop is taken as it is."""
    if len(hop) == 32:
        first, second = ip_address(hop[:16]), ip_address(hop[16:])
        if isinstance(first, IPv6Address) and first.is_link_local:
            return second
        return first
    return ip_address(hop)


def _as_path(value: bytes, width: int) -> tuple[tuple[int, ...], str]:
    """AS_SEQUENCE and AS_SET members in order (set members still count for loop detection; order inside a
    set has no meaning), and what is wrong with the attribute ("" when nothing). Confederation segments
    (RFC 5065) are left out, as they are for path length. RFC 7606 §7.2: an unknown segment type, a segment
    of zero ASNs or one overrunning the attribute is malformed; RFC 7607: so is AS 0."""
    path: list[int] = []
    i, stop = 0, len(value)
    while i < stop:
        if i + 2 > stop:
            return tuple(path), "truncated segment"
        kind, count = value[i], value[i + 1]
        i += 2
        segment_end = i + count * width
        if count == 0:
            return tuple(path), "segment of 0 ASNs"
        if segment_end > stop:
            return tuple(path), "segment overruns the attribute"
        if kind not in (_AS_SET, _AS_SEQUENCE, 3, 4):
            return tuple(path), f"segment type {kind}"
        asns = [int.from_bytes(value[j:j + width], "big") for j in range(i, segment_end, width)]
        if 0 in asns:
            return tuple(path), "AS 0"
        if kind in (_AS_SEQUENCE, _AS_SET):
            path.extend(asns)
        i = segment_end
    return tuple(path), ""


def _prefixes(body: bytes, i: int, stop: int, version: int) -> list[Prefix]:
    """The prefixes packed between i and stop (RFC 4271 §4.3: length octet, then the significant octets).
    A length beyond the family's or a prefix overrunning its field leaves the rest unlocatable (RFC 7606
    §5.3): session reset. Bits past the length are irrelevant (§4.3) and masked off."""
    out: list[Prefix] = []
    append = out.append
    width = 32 if version == 4 else 128
    masks = NETMASK[version]
    while i < stop:
        length = body[i]
        octets = (length + 7) >> 3
        following = i + 1 + octets
        if length > width or following > stop:
            raise _Reset(f"IPv{version} prefix /{length} malformed or overrunning its field", body[i:stop])
        value = int.from_bytes(body[i + 1:following], "big") << (width - 8 * octets)
        append(Prefix(version, value & masks[length], length))
        i = following
    return out



def _routes(peer: IPAddress, prefixes: list[Prefix], next_hop: IPAddress, attributes: _Attributes
            ) -> list[LearnedRoute]:
    as_path, communities = attributes.as_path, attributes.communities
    return [LearnedRoute(peer, prefix, next_hop, as_path, communities) for prefix in prefixes]
