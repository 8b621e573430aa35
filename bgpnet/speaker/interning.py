"""One shared object per learned prefix, peer and next hop, with the hash computed once (pure, no I/O).

A full table is tens of thousands of prefixes that all carry the same peer and next hop, and every prefix is a
key in several dicts (RIB per peer and per prefix, desired routes, the route table's cache). The stdlib's
`ipaddress` objects recompute their hash in Python on every dict operation, which was the top entry of the
agent's profile during a full-table transfer. The subclasses here hash once (IPv4 prefixes even in C) and
compare, hash and pickle like the plain stdlib values, so the rest of bgpnet never needs to know they exist.
Prefixes are interned by their BGP wire encoding (length octet + significant octets), so a re-learned table
costs one dict lookup per prefix and reuses the objects of the first one.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from bgpnet.model import IPAddress

_CACHE_LIMIT = 1 << 18
_ADDRESS_LIMIT = 4096


class HashedIPv4Network(float, IPv4Network):
    """An `IPv4Network` that is equal to, and hashes like, the plain one, with its hash computed in C.

    Every dict operation on a prefix key calls its hash. A Python-level `__hash__` (even one returning a stored
    value) is a Python call, ~30 ns more than the C slot of a built-in type, and a full-table transfer does
    about ten such operations per prefix. So the object is also a `float` whose value is the stdlib's hash of
    the network (an int below 2**32, which a float holds exactly, and equal ints and floats hash alike): its
    `tp_hash` is float's own C function. Everything an `IPv4Network` does is `IPv4Network`'s: equality,
    ordering, `str`, attributes (the three the stdlib sets are slots, read as fast as before). What the float
    base would add is switched off where it could be reached by mistake: `bool()` is always true (0.0.0.0/0
    hashes to 0), `format()` and `!=` are the network's. `json.dumps` of a raw prefix would print the number,
    so bgpnet formats prefixes with `str` before JSON (bgpnet/logs.py does it for log fields).
    """

    __slots__ = ("network_address", "netmask", "_prefixlen")
    __hash__ = float.__hash__  # C: the type slot points at float_hash, not at a Python method
    __eq__ = IPv4Network.__eq__
    __ne__ = object.__ne__  # float's would compare the hashes: two networks may share one
    __lt__ = IPv4Network.__lt__
    __le__ = IPv4Network.__le__
    __gt__ = IPv4Network.__gt__
    __ge__ = IPv4Network.__ge__
    __format__ = object.__format__

    def __new__(cls, address: object, strict: bool = True) -> HashedIPv4Network:
        return float.__new__(cls, hash(IPv4Network(address, strict)))  # type: ignore[arg-type]

    def __init__(self, address: object, strict: bool = True) -> None:
        IPv4Network.__init__(self, address, strict)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"IPv4Network({str(self)!r})"

    def __reduce__(self) -> tuple:
        return IPv4Network, (str(self),)


class HashedIPv4Address(IPv4Address):
    """An `IPv4Address` whose hash is computed once (the stdlib's is `hash(hex(int(self)))`, in Python)."""

    __slots__ = ("_hash",)

    def __init__(self, address: object) -> None:
        super().__init__(address)  # type: ignore[arg-type]
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Address({str(self)!r})"

    def __reduce__(self) -> tuple:
        return IPv4Address, (str(self),)


# Interned prefixes per IP version, keyed by their wire encoding. The UPDATE decoder looks these dicts up
# itself (one `dict.get` per prefix, bytes hash in C) and calls network_from_wire only for a new prefix.
networks: dict[int, dict[bytes, IPv4Network | IPv6Network]] = {4: {}, 6: {}}
_addresses: dict[str | bytes, IPAddress] = {}


def network_from_wire(version: int, key: bytes) -> IPv4Network | IPv6Network:
    """The prefix encoded as `key` (RFC 4271 §4.3: one length octet, then the significant octets).

    A length beyond the family's, or missing or extra octets, raise ValueError (the decoder checks the framing
    before). Bits set past the length are irrelevant (RFC 4271 §4.3) and masked off."""
    known = networks[version]
    network = known.get(key)
    if network is None:
        network = _decode_network(version, key)
        if len(known) >= _CACHE_LIMIT:
            known.clear()
        known[key] = network
    return network


def _decode_network(version: int, key: bytes) -> IPv4Network | IPv6Network:
    width = 32 if version == 4 else 128
    length = key[0]
    if length > width:
        raise ValueError(f"prefix length {length} exceeds {width}")
    octets = key[1:]
    if len(octets) != (length + 7) // 8:
        raise ValueError(f"prefix /{length} encoded in {len(octets)} octets")
    value = int.from_bytes(octets.ljust(width // 8, b"\0"), "big") & ~((1 << (width - length)) - 1)
    if version == 4:
        return HashedIPv4Network((value, length))
    return IPv6Network((value, length))


def address(text: str) -> IPAddress:
    """The same address object for the same textual peer address in every message."""
    found = _addresses.get(text)
    if found is None:
        parsed = ipaddress.ip_address(text)
        found = _remember(text, HashedIPv4Address(int(parsed)) if parsed.version == 4 else parsed)
    return found


def address_from_wire(packed: bytes) -> IPAddress:
    """The same address object for the same next hop (4 or 16 octets) in every UPDATE: the routes of a full
    table then share one gateway object, which keeps per-gateway work (next-hop resolution) to one lookup."""
    found = _addresses.get(packed)
    if found is None:
        if len(packed) == 4:
            found = _remember(packed, HashedIPv4Address(packed))
        elif len(packed) == 16:
            found = _remember(packed, ipaddress.IPv6Address(packed))
        else:
            raise ValueError(f"next hop of {len(packed)} octets")
    return found


def _remember(key: str | bytes, value: IPAddress) -> IPAddress:
    if len(_addresses) >= _ADDRESS_LIMIT:
        _addresses.clear()
    _addresses[key] = value
    return value


def clear() -> None:
    """Forget every interned value (tests measure the cost of a first table with this)."""
    for known in networks.values():
        known.clear()
    _addresses.clear()
