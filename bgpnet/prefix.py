"""`Prefix`: the one value type for an IPv4 or IPv6 route prefix inside bgpnet (pure, no I/O).

A learned full table is tens of thousands of prefixes, and each one is a key in several dicts (RIB, desired
routes, the route table's view of the kernel). So the type is a `NamedTuple` of three ints: hashing and
equality are the tuple's own C code, one instance costs ~110 bytes with its integer, and IPv4 and IPv6 are
the same type. `ipaddress` objects appear only at the edges (configuration, Node objects, display), converted
with `Prefix.from_network` / `Prefix.parse` and `to_network` / `str`.

A prefix is always canonical: host bits past `length` are zero (RFC 4271 §4.3 says they are irrelevant, so
the decoder masks them; `parse` and `from_network` refuse them as `ipaddress` does with strict=True). Ordering
is by (version, network address, length), the order `ipaddress` sorts networks in.

Being a tuple, a `Prefix` also equals a plain `(4, value, length)` tuple and `json.dumps` would print it as a
list: bgpnet formats prefixes with `str` wherever they leave the process (logs, status, metrics labels).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

WIDTH = {4: 32, 6: 128}


def _netmasks(width: int) -> tuple[int, ...]:
    return tuple(((1 << width) - 1) ^ ((1 << (width - length)) - 1) for length in range(width + 1))


# NETMASK[version][length]: the network mask as an integer; masking host bits off is one AND.
NETMASK = {4: _netmasks(32), 6: _netmasks(128)}
_NETWORK = {4: ipaddress.IPv4Network, 6: ipaddress.IPv6Network}
_ADDRESS = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}


class Prefix(NamedTuple):
    """An IP prefix: `version` 4 or 6, the network address as an integer (host bits zero) and its length."""

    version: int
    value: int
    length: int

    @classmethod
    def from_network(cls, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Prefix:
        return cls(network.version, int(network.network_address), network.prefixlen)

    @classmethod
    def parse(cls, text: str) -> Prefix:
        """`10.0.0.0/24` or `fd00::/64` (a bare address is a host prefix); ValueError when host bits are set."""
        return cls.from_network(ipaddress.ip_network(text, strict=True))

    @classmethod
    def from_wire(cls, version: int, encoded: bytes) -> Prefix:
        """The prefix encoded as in RFC 4271 §4.3 / RFC 4760: one length octet, then ceil(length/8) octets.

        A length beyond the family's width or a wrong number of octets raise ValueError (the UPDATE decoder
        checks framing before); bits set past the length are masked off."""
        width = WIDTH[version]
        length = encoded[0]
        if length > width:
            raise ValueError(f"prefix length {length} exceeds {width}")
        octets = encoded[1:]
        if len(octets) != (length + 7) // 8:
            raise ValueError(f"prefix /{length} encoded in {len(octets)} octets")
        value = int.from_bytes(octets, "big") << (width - 8 * len(octets))
        return cls(version, value & NETMASK[version][length], length)

    @property
    def width(self) -> int:
        """32 for IPv4, 128 for IPv6."""
        return WIDTH[self.version]

    @property
    def packed(self) -> bytes:
        """The network address in network byte order (4 or 16 octets), as netlink's RTA_DST wants it."""
        return self.value.to_bytes(WIDTH[self.version] // 8, "big")

    @property
    def last(self) -> int:
        """The highest address inside the prefix, as an integer."""
        return self.value | ((1 << (WIDTH[self.version] - self.length)) - 1)

    def contains(self, other: Prefix) -> bool:
        """True when `other` is this prefix or a more-specific inside it (same family)."""
        return (other.version == self.version and other.length >= self.length
                and other.value >> (WIDTH[self.version] - self.length)
                == self.value >> (WIDTH[self.version] - self.length))

    def overlaps(self, other: Prefix) -> bool:
        """True when the two prefixes share any address (one contains the other)."""
        return self.contains(other) or other.contains(self)

    def contains_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        shift = WIDTH[self.version] - self.length
        return address.version == self.version and int(address) >> shift == self.value >> shift

    def to_network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return _NETWORK[self.version]((self.value, self.length))

    @property
    def network_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return _ADDRESS[self.version](self.value)

    def __str__(self) -> str:
        return f"{_ADDRESS[self.version](self.value)}/{self.length}"

    def __repr__(self) -> str:
        return f"Prefix({str(self)!r})"
