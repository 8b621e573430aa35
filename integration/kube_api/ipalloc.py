"""ClusterIP and NodePort ranges, allocated the way kube-apiserver's bitmap allocators do it.

A range keeps nothing itself: the caller passes the values in use (read from the stored Services under the
store lock), so a value can never be handed out twice and a deleted Service's values are free at once, which is
what the apiserver's allocators plus their repair loops converge to.

- Service CIDRs (`--service-cluster-ip-range`): one per family, at most two, at most 20 host bits (the
  apiserver refuses larger ranges). Usable addresses exclude the network address and, for IPv4, the broadcast.
  Dynamic allocation picks a random free address in the upper band first and falls back to the lower band,
  which is kept for static requests (KEP-3070: the lower band is min(max(16, size/16), 256) addresses).
- NodePorts (`--service-node-port-range`, 30000-32767): the same banding (KEP-3668: min(max(16, size/32), 128)).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FULL = "range is full"


def _band(size: int, low: int, high: int, step: int) -> int:
    """calculateRangeOffset: how many values at the bottom are kept for static allocation."""
    if size <= low:
        return 0
    return max(low, min(size // step, high))


def _scan(used: Collection[int], size: int, band: int, rng: random.Random) -> int | None:
    """randomScanStrategyWithOffset: a random start in the upper band, then the lower band."""
    for start, length in ((band, size - band), (0, band)):
        if length <= 0:
            continue
        first = rng.randrange(length)
        for i in range(length):
            offset = start + (first + i) % length
            if offset not in used:
                return offset
    return None


@dataclass(frozen=True)
class IpRange:
    network: IPNetwork

    @property
    def family(self) -> str:
        return "IPv4" if self.network.version == 4 else "IPv6"

    @property
    def size(self) -> int:
        return self.network.num_addresses - (2 if self.network.version == 4 else 1)

    def offset(self, ip: IPAddress) -> int | None:
        """Index of `ip` among the usable addresses, None outside them (network, broadcast, other ranges)."""
        if ip.version != self.network.version:
            return None
        offset = int(ip) - int(self.network.network_address) - 1
        return offset if 0 <= offset < self.size else None

    def first(self) -> IPAddress:
        """The address the apiserver gives the `kubernetes` Service."""
        return self.network.network_address + 1

    def allocate_next(self, used: Collection[IPAddress], rng: random.Random) -> IPAddress | None:
        offsets = {o for o in (self.offset(ip) for ip in used) if o is not None}
        found = _scan(offsets, self.size, _band(self.network.num_addresses, 16, 256, 16), rng)
        return None if found is None else self.network.network_address + 1 + found

    def not_in_range(self, ip: str) -> str:
        return f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.network}"


def parse_service_cidrs(cidrs: Sequence[str]) -> tuple[IpRange, ...]:
    """Validated like kube-apiserver's --service-cluster-ip-range; raises ValueError with its kind of message."""
    if not cidrs:
        raise ValueError("at least one service CIDR is needed")
    if len(cidrs) > 2:
        raise ValueError("at most two service CIDRs (one per IP family) may be given")
    ranges = []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise ValueError(f"service CIDR {cidr!r} is invalid: {exc}") from None
        bits = network.max_prefixlen
        if bits - network.prefixlen > 20:
            raise ValueError(f"specified service CIDR {cidr} is too large; for {bits}-bit addresses, the mask "
                             f"must be >= {bits - 20}")
        ranges.append(IpRange(network))
    if len(ranges) == 2 and ranges[0].family == ranges[1].family:
        raise ValueError("service CIDRs must be of different IP families (one IPv4, one IPv6) for dual stack")
    return tuple(ranges)


@dataclass(frozen=True)
class PortRange:
    base: int = 30000
    size: int = 2768  # 30000-32767

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """`30000-32767` (or one port), as --service-node-port-range takes it."""
        low, sep, high = text.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise ValueError(f"invalid port range {text!r}") from None
        if not 0 < first <= last <= 65535:
            raise ValueError(f"invalid port range {text!r}")
        return cls(first, last - first + 1)

    def __str__(self) -> str:
        return f"{self.base}-{self.base + self.size - 1}"

    def contains(self, port: int) -> bool:
        return self.base <= port < self.base + self.size

    def allocate_next(self, used: Collection[int], rng: random.Random) -> int | None:
        offsets = {p - self.base for p in used if self.contains(p)}
        found = _scan(offsets, self.size, _band(self.size, 16, 128, 32), rng)
        return None if found is None else self.base + found

    def not_in_range(self) -> str:
        return f"provided port is not in the valid range. The range of valid ports is {self}"
