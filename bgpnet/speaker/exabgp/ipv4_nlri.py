"""Patch: ExaBGP 4.2.25 builds no IPv4 NLRI objects for received UPDATEs (`Update.unpack_message`).

Replaces: `exabgp.bgp.message.update.Update.unpack_message` (a classmethod), for incoming UPDATEs only.
Why: bgpnet reads every UPDATE raw (`receive { packets; }`, decoded by bgpnet.speaker.wire) and keeps no
Adj-RIB-In in ExaBGP (`adj-rib-in false`), so the two objects ExaBGP builds per prefix of the UPDATE's own
Withdrawn Routes and NLRI fields (plus a debug string formatted eagerly for each) are thrown away: ~60 % of
ExaBGP's CPU for a 50k-prefix table. Here those two fields are only checked for framing (prefix lengths ≤ 32
that fit the field: the check ExaBGP's decoder makes; on failure the NOTIFICATION RFC 4271 §6.3 asks for,
UPDATE Message Error / Invalid Network Field, where ExaBGP itself sends 1/0 for a length over 32) and
removed before ExaBGP parses the rest of the message as usual.
MP_REACH/MP_UNREACH (IPv6) are left to ExaBGP untouched; so are outgoing UPDATEs and ADD-PATH sessions.
Upstream: none found — ExaBGP has no option to receive raw UPDATEs without decoding their NLRI.
ExaBGP 5: `Update.unpack_message` keeps this shape in 5.0; the patch would need re-checking against its
decoder (tests/unit/test_exabgp_compat.py pins that 4.2.25 builds one object per IPv4 prefix).
"""

from __future__ import annotations


def check_ipv4_prefixes(field: bytes) -> None:
    """Framing of an IPv4 NLRI field (RFC 4271 §4.3): each prefix's length octet (≤ 32) and its octets fit."""
    i, end = 0, len(field)
    while i < end:
        length = field[i]
        if length > 32:
            raise ValueError(f"IPv4 prefix length {length}")
        i += 1 + ((length + 7) >> 3)
    if i != end:
        raise ValueError("IPv4 prefix overruns its field")


def without_ipv4_nlri(data: bytes, split: object) -> bytes | None:
    """The UPDATE body with empty Withdrawn Routes and NLRI fields (path attributes kept), or None when there
    is nothing to remove. Raises ValueError on a malformed IPv4 prefix."""
    withdrawn, attributes, announced = split(data)  # type: ignore[operator]
    if not withdrawn and not announced:
        return None
    check_ipv4_prefixes(withdrawn)
    check_ipv4_prefixes(announced)
    return b"\0\0" + len(attributes).to_bytes(2, "big") + attributes


def apply() -> None:
    """Wrap `Update.unpack_message` as described above (idempotent)."""
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.notification import Notify
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.protocol.family import AFI, SAFI

    original = Update.unpack_message.__func__  # type: ignore[attr-defined]
    if getattr(original, "bgpnet_patched", False):
        return

    def unpack_message(cls: type, data: bytes, direction: int, negotiated: object) -> object:
        if direction != Direction.IN or negotiated.addpath.receive(AFI.ipv4, SAFI.unicast):  # type: ignore[attr-defined]
            return original(cls, data, direction, negotiated)
        try:
            stripped = without_ipv4_nlri(data, cls.split)
        except ValueError as exc:
            raise Notify(3, 10, str(exc)) from None  # UPDATE Message Error, Invalid Network Field
        if stripped is None:
            return original(cls, data, direction, negotiated)
        if len(stripped) == 4:
            # Only IPv4 withdrawals: without them the body would read as an End-of-RIB.
            return cls([], Attributes())
        return original(cls, stripped, direction, negotiated)

    unpack_message.bgpnet_patched = True  # type: ignore[attr-defined]
    Update.unpack_message = classmethod(unpack_message)  # type: ignore[method-assign, assignment]
