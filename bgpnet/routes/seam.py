"""The one seam between the route table's decisions and the kernel: `RouteNetlink`.

A batch is three plain lists (delete, replace, add) rather than one object per route: at 50k routes every
per-route allocation shows up in the benchmark. The implementation reports only failures, by position in
their list, because success is the common case and the socket implementation learns it without a message
per route (see `bgpnet.routes.netlink`). `SocketRouteNetlink` is the real implementation; unit tests use a
fake that models the kernel's table (tests/unit/test_routes_table.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.messages import DumpedRoute

ADD = "add"
REPLACE = "replace"
DELETE = "delete"


@dataclass(frozen=True)
class RouteBatch:
    """Kernel changes for one protocol and table, sent in this order: delete, replace, add.

    - delete: (prefix, metric) — metric None means "our route for this prefix at whatever metric".
    - replace: NLM_F_CREATE|NLM_F_REPLACE, only for prefixes the kernel already holds with our protocol.
    - add: NLM_F_CREATE|NLM_F_EXCL, so the kernel refuses (EEXIST) when any route, of any protocol, already
      holds the prefix: that is how a foreign route is detected without dumping the whole table.
    """

    delete: Sequence[tuple[Prefix, int | None]] = ()
    replace: Sequence[KernelRoute] = ()
    add: Sequence[KernelRoute] = ()

    def __len__(self) -> int:
        return len(self.delete) + len(self.replace) + len(self.add)


class BatchFailure(NamedTuple):
    """One message the kernel refused: which list (ADD/REPLACE/DELETE), its index there, the errno."""

    kind: str
    index: int
    errno: int


class RouteNetlink(Protocol):
    def dump(self, *, proto: int, table: int, known: Iterable[KernelRoute] = ()) -> list[DumpedRoute]:
        """Every route with this protocol in this table, IPv4 and IPv6. A dumped route equal to one of
        `known` may be returned as that same object (it saves building it; the result is equal either way)."""
        ...

    def send(self, batch: RouteBatch, *, proto: int, table: int) -> list[BatchFailure]:
        """Apply every message of the batch (one failure never stops the rest); return the failures."""
        ...

    def close(self) -> None: ...
