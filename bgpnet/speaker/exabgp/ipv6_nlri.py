"""Patch: ExaBGP 4.2.25 builds one IPv6 NLRI object per received MP_REACH/MP_UNREACH, not one per prefix.

Replaces: `MPRNLRI.unpack` and `MPURNLRI.unpack` (classmethods of the MP_REACH_NLRI and MP_UNREACH_NLRI
attributes), for incoming IPv6 unicast without ADD-PATH only.
Why: the IPv6 counterpart of ipv4_nlri. bgpnet reads every UPDATE raw and ExaBGP keeps no Adj-RIB-In, so the
objects ExaBGP builds for each IPv6 prefix (an INET, a CIDR, a Family, a NextHop and an eager debug string)
are thrown away: 0.98 s of ExaBGP CPU for a 50k-prefix IPv6 table, against 0.05 s for the same IPv4 table
once ipv4_nlri skips its NLRI (bench/route_install.py, per-process CPU). Here the attribute's NLRI field is
checked for framing (each prefix length ≤ 128 and its octets inside the field; on failure UPDATE Message
Error / Invalid Network Field, as ExaBGP's own decoder sends for a prefix that overruns) and cut after its
first prefix before ExaBGP's original decoder runs: ExaBGP still checks everything before the NLRI (AFI/SAFI
negotiated, next-hop length, the reserved octet) and decodes one prefix, so the attribute keeps at least one
NLRI and is never mistaken for an End-of-RIB marker (RFC 4724 §2: MP_UNREACH with no withdrawn routes).
Everything else — other families, ADD-PATH sessions, outgoing UPDATEs, an MP_REACH without NLRI — goes to
ExaBGP untouched.
Upstream: none found — ExaBGP has no option to receive raw UPDATEs without decoding their NLRI.
ExaBGP 5: both classmethods keep this shape in 5.0 (re-check against its decoder);
tests/unit/test_exabgp_compat.py pins that 4.2.25 builds one object per IPv6 prefix.
"""

from __future__ import annotations

from typing import Any

AFI_IPV6, SAFI_UNICAST = 2, 1


def first_ipv6_prefix_end(field: bytes) -> int:
    """The length of the first prefix of an IPv6 NLRI field, after checking the framing of the whole field
    (RFC 4760 §5: a length octet ≤ 128, then that many bits rounded up to octets). Raises ValueError."""
    i, end, first = 0, len(field), 0
    while i < end:
        length = field[i]
        if length > 128:
            raise ValueError(f"IPv6 prefix length {length}")
        i += 1 + ((length + 7) >> 3)
        first = first or i
    if i != end:
        raise ValueError("IPv6 prefix overruns its field")
    return first


def reach_nlri_offset(data: bytes) -> int | None:
    """Where the NLRI field starts in an MP_REACH_NLRI value (AFI 2, SAFI 1, next-hop length, next hop,
    reserved octet), or None when the value is too short for that (ExaBGP's decoder then says why)."""
    if len(data) < 4:
        return None
    offset = 4 + data[3] + 1
    return offset if offset <= len(data) else None


def _cut(data: bytes, offset: int) -> bytes:
    """`data` with its NLRI field (from `offset`) cut after the first prefix; ValueError when malformed."""
    return data[:offset + first_ipv6_prefix_end(data[offset:])]


def apply() -> None:
    """Wrap `MPRNLRI.unpack` and `MPURNLRI.unpack` as described above (idempotent)."""
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.notification import Notify
    from exabgp.bgp.message.update.attribute.mprnlri import MPRNLRI
    from exabgp.bgp.message.update.attribute.mpurnlri import MPURNLRI
    from exabgp.protocol.family import AFI, SAFI

    def wrap(klass: Any, nlri_offset: Any) -> None:
        original = klass.unpack.__func__
        if getattr(original, "bgpnet_patched", False):
            return

        def unpack(cls: type, data: bytes, direction: int, negotiated: Any) -> Any:
            if (direction != Direction.IN or data[:3] != b"\x00\x02\x01"
                    or negotiated.addpath.receive(AFI.ipv6, SAFI.unicast)):
                return original(cls, data, direction, negotiated)
            offset = nlri_offset(data)
            if offset is None or offset == len(data):
                return original(cls, data, direction, negotiated)  # no NLRI: ExaBGP's own verdict
            try:
                data = _cut(data, offset)
            except ValueError as exc:
                raise Notify(3, 10, str(exc)) from None  # UPDATE Message Error, Invalid Network Field
            return original(cls, data, direction, negotiated)

        unpack.bgpnet_patched = True  # type: ignore[attr-defined]
        klass.unpack = classmethod(unpack)

    wrap(MPRNLRI, reach_nlri_offset)
    wrap(MPURNLRI, lambda data: 3)  # AFI, SAFI, then the withdrawn routes
