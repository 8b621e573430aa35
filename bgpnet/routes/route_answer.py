"""What the kernel answers to `ip route get`, and the port that asks it.

Its own module so that the pure resolution (`bgpnet.routes.resolve`) and the netlink lookup
(`bgpnet.routes.route_get`) both depend on it and not on each other (they used to import each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bgpnet.model import IPAddress


@dataclass(frozen=True)
class RouteAnswer:
    """What the kernel answers for one destination: the gateway (None when directly connected), the
    preferred source address and the outgoing interface's index."""

    gateway: IPAddress | None
    source: IPAddress | None
    interface: int | None = None


class KernelLookup(Protocol):
    def route_get(self, destination: IPAddress) -> RouteAnswer | None:
        """The kernel's route towards `destination`; None when it has none (unreachable, blackhole...)."""
        ...

    def interface_addresses(self, interface: int, version: int) -> list[IPAddress]:
        """The usable global addresses of one IP version on an interface, in the kernel's order."""
        ...

    def close(self) -> None: ...
