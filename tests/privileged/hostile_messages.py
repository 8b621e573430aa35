"""BGP messages as a hostile peer sends them: well-formed ones and deliberately broken ones (pure, no I/O).

Everything is built octet by octet from RFC 4271 (header, OPEN, UPDATE, KEEPALIVE, NOTIFICATION), RFC 4760
(MP_REACH/MP_UNREACH), RFC 5492 (capabilities) and RFC 6793 (4-octet AS), so that any length field, flag or
value can be made wrong on purpose. `tests.unit.bgp_encode` supplies the well-formed pieces; this module adds
the raw UPDATE layout with explicit length fields, the raw OPEN, and the split of a received byte stream.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from tests.unit.bgp_encode import as_path, prefix_bytes

MARKER = b"\xff" * 16
HEADER_LENGTH = 19
MAX_MESSAGE = 4096
OPEN, UPDATE, NOTIFICATION, KEEPALIVE = 1, 2, 3, 4
TYPE_NAMES = {OPEN: "OPEN", UPDATE: "UPDATE", NOTIFICATION: "NOTIFICATION", KEEPALIVE: "KEEPALIVE", 5: "ROUTE-REFRESH"}

# Path attribute type codes and flags (RFC 4271 §4.3, RFC 4456, RFC 4360, RFC 6793, RFC 8092).
ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR = 1, 2, 3, 4, 5, 6, 7
COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST, MP_REACH, MP_UNREACH, EXT_COMMUNITIES = 8, 9, 10, 14, 15, 16
AS4_PATH, AS4_AGGREGATOR, LARGE_COMMUNITY = 17, 18, 32
OPTIONAL, TRANSITIVE, PARTIAL, EXTENDED = 0x80, 0x40, 0x20, 0x10
WELL_KNOWN = TRANSITIVE
OPTIONAL_TRANSITIVE = OPTIONAL | TRANSITIVE
AS_SET, AS_SEQUENCE = 1, 2

# NOTIFICATION error codes (RFC 4271 §4.5) and the Cease subcode bgpnet's teardown uses (RFC 4486).
HEADER_ERROR, OPEN_ERROR, UPDATE_ERROR, HOLD_TIMER_EXPIRED, FSM_ERROR, CEASE = 1, 2, 3, 4, 5, 6
ADMINISTRATIVE_RESET = 4


def frame(kind: int, body: bytes = b"", *, marker: bytes = MARKER, length: int | None = None) -> bytes:
    """One message: marker, length (the true one unless `length` forces another), type, body."""
    total = HEADER_LENGTH + len(body) if length is None else length
    return marker + total.to_bytes(2, "big") + bytes([kind]) + body


def keepalive() -> bytes:
    return frame(KEEPALIVE)


def notification(code: int, subcode: int, data: bytes = b"") -> bytes:
    return frame(NOTIFICATION, bytes([code, subcode]) + data)


# --- OPEN --------------------------------------------------------------------------------------------------
def capability(code: int, value: bytes = b"") -> bytes:
    return bytes([code, len(value)]) + value


def multiprotocol(afi: int = 1, safi: int = 1) -> bytes:
    """RFC 4760 §8: AFI, reserved octet, SAFI."""
    return capability(1, afi.to_bytes(2, "big") + b"\x00" + bytes([safi]))


def four_octet_as(asn: int) -> bytes:
    return capability(65, asn.to_bytes(4, "big"))


def open_body(asn: int, router_id: str, hold: int, capabilities: Iterable[bytes] = (), *, version: int = 4,
              parameters: bytes | None = None) -> bytes:
    """An OPEN body. The capabilities travel in one Capabilities optional parameter (type 2); `parameters`
    replaces the whole optional parameters field (its length octet is still computed)."""
    caps = b"".join(capabilities)
    if parameters is None:
        parameters = bytes([2, len(caps)]) + caps if caps else b""
    my_as = asn if asn <= 0xFFFF else 23456  # AS_TRANS in the 2-octet field (RFC 6793 §4.2.1)
    return (bytes([version]) + my_as.to_bytes(2, "big") + hold.to_bytes(2, "big")
            + ipaddress.IPv4Address(router_id).packed + bytes([len(parameters)]) + parameters)


def standard_capabilities(asn: int) -> list[bytes]:
    """What the rogue advertises: IPv4 unicast and 4-octet AS numbers (no graceful restart, so the node drops
    its routes at once when the session goes)."""
    return [multiprotocol(1, 1), four_octet_as(asn)]


# --- UPDATE ------------------------------------------------------------------------------------------------
def attr(code: int, value: bytes, flags: int = WELL_KNOWN, *, length: int | None = None) -> bytes:
    """One path attribute. The extended-length flag is honoured as given (and set when the value needs it);
    `length` writes a false length field."""
    if len(value) > 255:
        flags |= EXTENDED
    size = len(value) if length is None else length
    if flags & EXTENDED:
        return bytes([flags, code]) + size.to_bytes(2, "big") + value
    return bytes([flags, code, size]) + value


def origin(value: int = 0) -> bytes:
    return attr(ORIGIN, bytes([value]))


def path(*asns: int, kind: int = AS_SEQUENCE) -> bytes:
    """AS_PATH of one segment in 4-octet numbers (the session negotiates 4-octet AS)."""
    return attr(AS_PATH, as_path([(kind, list(asns))], 4))


def next_hop(address: str) -> bytes:
    return attr(NEXT_HOP, ipaddress.IPv4Address(address).packed)


def nlri(*prefixes: str) -> bytes:
    return b"".join(prefix_bytes(p) for p in prefixes)


def mp_reach(next_hop_octets: bytes, prefixes: bytes, *, afi: int = 1, safi: int = 1) -> bytes:
    """MP_REACH_NLRI value: AFI, SAFI, next hop length and octets, reserved octet, NLRI (raw)."""
    return afi.to_bytes(2, "big") + bytes([safi, len(next_hop_octets)]) + next_hop_octets + b"\x00" + prefixes


def mp_unreach(prefixes: bytes, *, afi: int = 1, safi: int = 1) -> bytes:
    return afi.to_bytes(2, "big") + bytes([safi]) + prefixes


def update_body(*, withdrawn: bytes = b"", attributes: bytes = b"", announced: bytes = b"",
                withdrawn_length: int | None = None, attributes_length: int | None = None) -> bytes:
    """RFC 4271 §4.3: Withdrawn Routes Length, Withdrawn Routes, Total Path Attribute Length, Path Attributes,
    NLRI. Both length fields are the true ones unless given."""
    w_len = len(withdrawn) if withdrawn_length is None else withdrawn_length
    a_len = len(attributes) if attributes_length is None else attributes_length
    return w_len.to_bytes(2, "big") + withdrawn + a_len.to_bytes(2, "big") + attributes + announced


def clean_attributes(asn: int, hop: str) -> bytes:
    return origin() + path(asn) + next_hop(hop)


def announce(prefixes: Iterable[str], asn: int, hop: str) -> bytes:
    """A well-formed UPDATE body announcing `prefixes` with AS_PATH [asn] and NEXT_HOP `hop`."""
    return update_body(attributes=clean_attributes(asn, hop), announced=nlri(*prefixes))


def withdraw(prefixes: Iterable[str]) -> bytes:
    return update_body(withdrawn=nlri(*prefixes))


# --- reading -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """One message the node sent (or the end of the TCP stream: kind None)."""

    kind: int | None
    body: bytes = b""
    at: float = 0.0

    @property
    def error(self) -> tuple[int, int] | None:
        """(code, subcode) of a NOTIFICATION."""
        if self.kind == NOTIFICATION and len(self.body) >= 2:
            return self.body[0], self.body[1]
        return None

    def describe(self) -> str:
        if self.kind is None:
            return "TCP close"
        if self.error is not None:
            data = self.body[2:]
            text = data.decode("ascii", "replace") if data and data.isascii() else data.hex()
            return f"NOTIFICATION {self.error[0]}/{self.error[1]}" + (f" ({text})" if data else "")
        return TYPE_NAMES.get(self.kind, f"type {self.kind}")


def split_messages(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete messages (type, body) at the start of `buffer`, and the incomplete rest. A header the node
    could never have sent (bad marker or length) raises ValueError: the stream cannot be re-synchronised."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while len(buffer) - i >= HEADER_LENGTH:
        if buffer[i:i + 16] != MARKER:
            raise ValueError(f"bad marker from the node: {buffer[i:i + 19].hex()}")
        length = int.from_bytes(buffer[i + 16:i + 18], "big")
        if not HEADER_LENGTH <= length <= MAX_MESSAGE:
            raise ValueError(f"bad length {length} from the node")
        if len(buffer) - i < length:
            break
        out.append((buffer[i + 18], buffer[i + HEADER_LENGTH:i + length]))
        i += length
    return out, buffer[i:]
