"""IPv4/IPv6 address arithmetic on plain integers (pure, no I/O).

`ipaddress` costs milliseconds to import (it pulls in `re` and `functools`); the plugin only needs to parse,
format and count addresses, which `inet_pton`/`inet_ntop` and integers do exactly, with the kernel's own
notion of a valid address. Formatting always yields the canonical text (`inet_ntop`), so the same address
is always the same IPAM file name.
"""


from _socket import AF_INET, AF_INET6, inet_ntop, inet_pton

_BITS = {AF_INET: 32, AF_INET6: 128}


def parse_ip(text: str) -> tuple[int, int]:
    """`"10.0.0.1"` -> (AF_INET, 167772161); raises ValueError for anything else (no zone ids, no spaces)."""
    if not isinstance(text, str) or not text or len(text) > 45:
        raise ValueError(f"invalid IP address {text!r}")
    family = AF_INET6 if ":" in text else AF_INET
    try:
        packed = inet_pton(family, text)
    except OSError:
        raise ValueError(f"invalid IP address {text!r}") from None
    return family, int.from_bytes(packed, "big")


def format_ip(family: int, value: int) -> str:
    return inet_ntop(family, value.to_bytes(4 if family == AF_INET else 16, "big"))


def packed(family: int, value: int) -> bytes:
    return value.to_bytes(4 if family == AF_INET else 16, "big")


def max_prefix(family: int) -> int:
    return _BITS[family]


class Cidr:
    """A network prefix such as 10.244.1.0/24 (host bits must be zero)."""

    __slots__ = ("family", "network", "prefixlen")

    def __init__(self, family: int, network: int, prefixlen: int) -> None:
        self.family = family
        self.network = network
        self.prefixlen = prefixlen

    @property
    def size(self) -> int:
        return 1 << (_BITS[self.family] - self.prefixlen)

    def first_host(self) -> int:
        """The first assignable address: the network address itself is skipped unless the prefix is a
        /31 or /32 (/127, /128), where every address is a host (RFC 3021)."""
        return self.network if self.size <= 2 else self.network + 1

    def last_host(self) -> int:
        """The last assignable address: IPv4 broadcast is skipped; for IPv6 the all-ones address is skipped
        too, as host-local does, so both families treat a range the same way."""
        last = self.network + self.size - 1
        return last if self.size <= 2 else last - 1

    def contains(self, family: int, value: int) -> bool:
        return family == self.family and self.network <= value < self.network + self.size

    def __str__(self) -> str:
        return f"{format_ip(self.family, self.network)}/{self.prefixlen}"

    def __repr__(self) -> str:
        return f"Cidr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cidr) and (self.family, self.network, self.prefixlen) == (
            other.family, other.network, other.prefixlen)

    def __hash__(self) -> int:
        return hash((self.family, self.network, self.prefixlen))


def parse_cidr(text: str) -> Cidr:
    """`"10.244.1.0/24"` -> Cidr; raises ValueError naming the text for a bad address, prefix or host bits."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError(f"invalid CIDR {text!r}")
    addr, _, length = text.partition("/")
    family, value = parse_ip(addr)
    if not length.isdigit() or len(length) > 3 or int(length) > _BITS[family]:
        raise ValueError(f"invalid CIDR {text!r}: bad prefix length")
    prefixlen = int(length)
    host_bits = _BITS[family] - prefixlen
    if value & ((1 << host_bits) - 1):
        raise ValueError(f"invalid CIDR {text!r}: host bits set")
    return Cidr(family, value, prefixlen)


def parse_ip_with_prefix(text: str) -> tuple[int, int, int]:
    """`"10.244.1.5/32"` (a result's address, host bits allowed) -> (family, value, prefixlen)."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError(f"invalid address {text!r}")
    addr, _, length = text.partition("/")
    family, value = parse_ip(addr)
    if not length.isdigit() or len(length) > 3 or int(length) > _BITS[family]:
        raise ValueError(f"invalid address {text!r}: bad prefix length")
    return family, value, int(length)


# Address space no pod can use (RFC 6890 special-purpose blocks that are not forwardable or that the kernel
# treats specially): a pod address there is unreachable, or worse, shadows the node's own loopback or
# link-local traffic (169.254.1.1 is every pod's gateway). A podCIDR overlapping one of them is refused.
_SPECIAL_USE = (
    ("0.0.0.0/8", "'this network' space"),
    ("127.0.0.0/8", "loopback space"),
    ("169.254.0.0/16", "link-local space"),
    ("224.0.0.0/4", "multicast space"),
    ("240.0.0.0/4", "reserved and broadcast space"),
    ("::/128", "the unspecified address"),
    ("::1/128", "the loopback address"),
    ("::ffff:0:0/96", "IPv4-mapped space"),
    ("fe80::/10", "link-local space"),
    ("ff00::/8", "multicast space"),
)


def overlaps(a: Cidr, b: Cidr) -> bool:
    return a.contains(b.family, b.network) or b.contains(a.family, a.network)


def special_use(cidr: Cidr) -> tuple[str, str] | None:
    """(block, what it is) of the first special-purpose block `cidr` overlaps, or None."""
    for block, what in _SPECIAL_USE:
        if overlaps(cidr, parse_cidr(block)):
            return block, what
    return None
