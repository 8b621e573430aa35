"""`RouteTable`: owns the kernel routes tagged with bgpnet's protocol number, and no others.

- `apply(desired)` takes the whole desired set (MetalLB's `Set`, not add/remove calls), diffs it against the
  cache of what is installed and sends only the difference as one batch.
- `resync(desired)` is the periodic full re-apply (kube-router's route_sync): it re-dumps our routes from the
  kernel, so the cache is the truth again, then applies. What was deleted or changed behind our back is
  re-installed; proto-179 routes nobody wants (e.g. left by a previous run) are deleted. The first call after
  start adopts the previous run's routes, so unchanged ones are not even touched.
- Foreign routes are never touched. New prefixes go out with NLM_F_EXCL: when another owner (any other
  protocol: static, boot, kernel, another daemon) holds the exact key — prefix and metric in the table —
  the kernel refuses with EEXIST and the route is reported as a "conflict" and retried at the next apply,
  so bgpnet takes over only once the other owner has gone. NLM_F_REPLACE is used only for prefixes the
  kernel held with our protocol at the last dump or apply; deletes carry our protocol, so the kernel only
  deletes a route of ours. A foreign route for the same prefix at another metric is left alone and coexists.
  One window remains: if another owner replaces one of our routes and bgpnet changes that route's gateways
  before the next resync notices, the replace overwrites it (kube-router and Calico share this window; only
  a dump before every replace would close it).
- Errors are per route (prefix, errno, reason); one bad route never stops the rest. The cache keeps the
  kernel's view: a failed add stays out, a failed replace keeps the old route, a failed delete keeps it.
- `apply_changes(desired, prefixes)` is `apply` for a caller that knows which prefixes may have changed (the
  agent during a full-table transfer): the plan looks at those prefixes only, plus the ones whose last
  change failed (so a conflict is still retried at every apply), and the cache is updated in place. It costs
  O(changes) instead of O(table), which keeps a burst of UPDATEs from turning quadratic.
- If the socket fails mid-batch (the kernel's answers were lost), the outcome is unknown: the exception
  propagates and the next apply re-dumps first.
- `start_resync()` / `finish_resync(desired)` are `resync` for a caller that must keep applying changes
  meanwhile (the agent: at 50k routes reading the kernel takes hundreds of ms, and a withdrawal arriving then
  waited for it). The dump runs on a thread of its own, over a netlink socket of its own; applies go on as
  usual and note the prefixes they touch. When the dump is in, the cache becomes what the kernel held, except
  for those prefixes, whose cached state is newer than the dump (`merge_dump`, pure), and the repair — the
  difference to what is desired — goes out as one normal apply.
"""

from __future__ import annotations

import errno as errnos
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bgpnet.compact_dict import compacted
from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes.messages import DEFAULT_METRIC, FAMILY
from bgpnet.routes.plan import RoutePlan, index_by_prefix, plan_changes, plan_prefixes
from bgpnet.routes.protocol import RTPROT_BGPNET
from bgpnet.routes.seam import ADD, DELETE, REPLACE, BatchFailure, DumpedRoute, RouteBatch, RouteNetlink

MAIN_TABLE = 254
CONFLICT = "conflict"


@dataclass(frozen=True)
class RouteError:
    """One route the kernel (or the planner) refused. `reason` is a short bounded label for metrics:
    "conflict" (another owner holds the prefix) or the errno name, e.g. "ENETUNREACH"."""

    prefix: Prefix
    op: str
    errno: int
    reason: str

    def __str__(self) -> str:
        return f"{self.op} {self.prefix}: {self.reason} ({os.strerror(self.errno)})"


@dataclass(frozen=True)
class ApplyResult:
    added: int
    replaced: int
    removed: int
    errors: tuple[RouteError, ...]
    duration_s: float


def _error(prefix: Prefix, op: str, code: int) -> RouteError:
    if op == ADD and code == errnos.EEXIST:
        return RouteError(prefix, op, code, CONFLICT)
    return RouteError(prefix, op, code, errnos.errorcode.get(code, str(code)))


class RouteTable:
    """The kernel routes of one protocol in one table. Not thread-safe: one caller (the agent's loop)."""

    def __init__(self, netlink: RouteNetlink | None = None, *, proto: int = RTPROT_BGPNET,
                 table: int = MAIN_TABLE, dump_netlink: Callable[[], RouteNetlink] | None = None) -> None:
        from bgpnet.routes.netlink import SocketRouteNetlink

        if netlink is None:
            netlink = SocketRouteNetlink()
        if dump_netlink is None:
            # Where a background resync reads the kernel: a socket of its own, so its answers never mix with an
            # apply's (a test double without sockets serves both).
            dump_netlink = SocketRouteNetlink if isinstance(netlink, SocketRouteNetlink) else (lambda: netlink)
        self._netlink = netlink
        self._dump_netlink = dump_netlink
        self._background: _BackgroundDump | None = None
        self.proto = proto
        self.table = table
        self._installed: dict[Prefix, KernelRoute] = {}
        self._strays: list[tuple[Prefix, int | None]] = []
        self._needs_dump = True
        self._v6: int | None = 0  # IPv6 routes in the cache; None: count again
        # Prefixes whose last add/replace/delete failed or was invalid: apply_changes() looks at them again.
        self._retry: set[Prefix] = set()

    def installed(self) -> Mapping[Prefix, KernelRoute]:
        """What bgpnet believes is programmed: a read-only view, valid until the next apply/resync."""
        return MappingProxyType(self._installed)

    def apply(self, desired: Collection[KernelRoute]) -> ApplyResult:
        started = time.perf_counter()
        if self._needs_dump:
            self._adopt_kernel_state()
        return self._apply(index_by_prefix(desired), started)

    def apply_changes(self, desired: Mapping[Prefix, KernelRoute], prefixes: Collection[Prefix]
                      ) -> ApplyResult:
        """Make the kernel match `desired` for `prefixes` (every other prefix is assumed unchanged since the
        last apply; each appears once, e.g. a set or a dict of changes). `desired` is the caller's whole
        desired map and is not retained."""
        started = time.perf_counter()
        if self._needs_dump:  # the cache is not the kernel's truth: fall back to a full apply
            self._adopt_kernel_state()
            return self._apply(dict(desired), started)
        if self._retry:  # prefixes the kernel refused last time are looked at again
            prefixes = {*prefixes, *self._retry}
        plan = plan_prefixes(desired, self._installed, prefixes)
        return self._send(plan, None, started)

    def installed_by_family(self) -> dict[str, int]:
        """How many routes the cache holds per family (O(1): maintained with the cache)."""
        v6 = self._v6_count()
        return {"ipv4": len(self._installed) - v6, "ipv6": v6}

    def _v6_count(self) -> int:
        if self._v6 is None:
            self._v6 = sum(1 for prefix in self._installed if prefix.version == 6)
        return self._v6

    def resync(self, desired: Collection[KernelRoute]) -> ApplyResult:
        started = time.perf_counter()
        self._adopt_kernel_state()
        return self._apply(index_by_prefix(desired), started)

    def start_resync(self, on_done: Callable[[], None] = lambda: None) -> None:
        """Begin reading the kernel on another thread; `on_done` is called from it when the dump is in (or
        failed). A resync already running is left to finish."""
        if self._background is None:
            netlink = self._dump_netlink()
            self._background = _BackgroundDump(netlink, netlink is not self._netlink, self.proto, self.table,
                                               list(self._installed.values()), on_done)

    def finish_resync(self, desired: Collection[KernelRoute]) -> ApplyResult | None:
        """None while the background dump is still running; else the repair apply (see the module doc)."""
        background = self._background
        if background is None or not background.done.is_set():
            return None
        self._background = None
        started = time.perf_counter()
        if background.error is not None:
            self._needs_dump = True  # the next apply reads the kernel itself
            raise background.error
        self._installed, self._strays = merge_dump(background.routes, self._installed, background.touched)
        self._v6 = None
        return self._apply(index_by_prefix(desired), started)

    def resync_running(self) -> bool:
        return self._background is not None

    def dump(self) -> Mapping[Prefix, KernelRoute]:
        """Read what the kernel holds with our protocol (e.g. left by a previous run) without changing it."""
        self._adopt_kernel_state()
        return self.installed()

    def close(self) -> None:
        if self._background is not None:
            self._background.done.wait(5)
        self._netlink.close()

    def _adopt_kernel_state(self) -> None:
        """Make the cache what the kernel holds with our protocol. A second route of ours for a prefix (at
        another metric than the one bgpnet uses) is a stray, deleted at that exact metric."""
        dumped = self._netlink.dump(proto=self.proto, table=self.table, known=self._installed.values())
        self._needs_dump = False
        self._strays = []
        if len(dumped) == len(self._installed):
            # The common periodic case: the kernel holds exactly our cache, and the dump handed back the
            # cached objects themselves; keeping the dict spares hashing every prefix again.
            cached = {id(route) for route in self._installed.values()}
            if all(id(route) in cached and metric == DEFAULT_METRIC[FAMILY[route.prefix.version]]
                   for route, metric in dumped):
                return
        self._installed, self._strays = merge_dump(dumped, {}, ())
        self._v6 = None

    def _apply(self, desired: dict[Prefix, KernelRoute], started: float) -> ApplyResult:
        return self._send(plan_changes(desired, self._installed), desired, started)

    def _send(self, plan: RoutePlan, desired: dict[Prefix, KernelRoute] | None, started: float
              ) -> ApplyResult:
        """Send the plan. `desired` is the complete desired map of a full apply (it becomes the cache when
        everything succeeds); None for a partial plan, whose outcome is merged into the cache in place."""
        errors = [RouteError(route.prefix, ADD, errnos.EINVAL, "no-gateway") for route in plan.invalid]
        deletes: list[tuple[Prefix, int | None]] = [*self._strays, *((p, None) for p in plan.delete)]
        batch = RouteBatch(delete=deletes, replace=plan.replace, add=plan.add)
        if not len(batch):
            if not errors and desired is not None:
                self._installed = desired  # equal content; the caller's objects make the next diff cheaper
            self._retry = {error.prefix for error in errors}
            return ApplyResult(0, 0, 0, tuple(errors), time.perf_counter() - started)
        if self._background is not None:
            self._background.touch(batch)  # before the kernel changes: the dump may or may not see it
        try:
            failures = self._netlink.send(batch, proto=self.proto, table=self.table)
        except BaseException:
            self._needs_dump = True
            raise
        self._strays = []
        if (desired is None or errors
                or any(kind != DELETE or code != errnos.ESRCH for kind, _, code in failures)):
            added, replaced, removed = self._commit(plan, batch, failures, errors)
        else:  # everything accepted: the kernel now holds exactly the desired set
            self._installed = desired
            self._v6 = None
            added, replaced, removed = len(plan.add), len(plan.replace), len(batch.delete)
        self._retry = {error.prefix for error in errors}
        return ApplyResult(added, replaced, removed, tuple(errors), time.perf_counter() - started)

    def _commit(self, plan: RoutePlan, batch: RouteBatch, failures: list[BatchFailure],
                errors: list[RouteError]) -> tuple[int, int, int]:
        """Update the cache with what the kernel accepted; turn failures into RouteErrors."""
        failed: dict[str, set[int]] = {ADD: set(), REPLACE: set(), DELETE: set()}
        for kind, index, code in failures:
            if kind == DELETE and code == errnos.ESRCH:
                continue  # already gone: the goal of a delete is reached
            failed[kind].add(index)
            prefix = batch.delete[index][0] if kind == DELETE else getattr(batch, kind)[index].prefix
            errors.append(_error(prefix, kind, code))
        installed = self._installed
        bad = failed[ADD]
        added = [r.prefix for i, r in enumerate(plan.add) if i not in bad] if bad else [r.prefix for r in plan.add]
        for kind, routes in ((ADD, plan.add), (REPLACE, plan.replace)):
            bad = failed[kind]
            if bad:
                installed.update((r.prefix, r) for i, r in enumerate(routes) if i not in bad)
            else:
                for r in routes:  # a plain loop: no tuple per route, on the path of every full-table burst
                    installed[r.prefix] = r
        bad = failed[DELETE]
        deleted = []
        for index, (prefix, metric) in enumerate(batch.delete):
            if metric is None and index not in bad:
                del installed[prefix]
                deleted.append(prefix)
        if deleted:
            self._installed = compacted(installed)  # a mass withdrawal leaves the table sized for the peak
        if self._v6 is not None:  # keep the family count current at the cost of the changes
            self._v6 += sum(p.version == 6 for p in added) - sum(p.version == 6 for p in deleted)
        return (len(plan.add) - len(failed[ADD]), len(plan.replace) - len(failed[REPLACE]),
                len(batch.delete) - len(failed[DELETE]))


def merge_dump(dumped: Iterable[DumpedRoute], cached: Mapping[Prefix, KernelRoute], touched: Collection[Prefix]
               ) -> tuple[dict[Prefix, KernelRoute], list[tuple[Prefix, int | None]]]:
    """The cache after a background dump (pure): what the kernel held, except for the prefixes applied while
    the dump ran, whose cached state is the newer one; and the strays (our protocol, another metric)."""
    installed: dict[Prefix, KernelRoute] = {}
    strays: list[tuple[Prefix, int | None]] = []
    for route, metric in dumped:
        prefix = route.prefix
        if prefix in touched:
            continue
        if metric == DEFAULT_METRIC[FAMILY[prefix.version]]:
            installed[prefix] = route
        else:
            strays.append((prefix, metric))
    for prefix in touched:
        route = cached.get(prefix)
        if route is not None:
            installed[prefix] = route
    return installed, strays


class _BackgroundDump:
    """One kernel dump on its own thread; `touched` collects the prefixes applied meanwhile (by the caller's
    thread only)."""

    def __init__(self, netlink: RouteNetlink, owned: bool, proto: int, table: int, known: list[KernelRoute],
                 on_done: Callable[[], None]) -> None:
        self.routes: list[DumpedRoute] = []
        self.error: OSError | None = None
        self.touched: set[Prefix] = set()
        self.done = threading.Event()
        self._netlink, self._owned = netlink, owned
        threading.Thread(target=self._run, args=(proto, table, known, on_done), name="route-resync",
                         daemon=True).start()

    def touch(self, batch: RouteBatch) -> None:
        self.touched.update(r.prefix for r in batch.add)
        self.touched.update(r.prefix for r in batch.replace)
        self.touched.update(prefix for prefix, _ in batch.delete)

    def _run(self, proto: int, table: int, known: list[KernelRoute], on_done: Callable[[], None]) -> None:
        try:
            self.routes = self._netlink.dump(proto=proto, table=table, known=known)
        except OSError as exc:
            self.error = exc
        finally:
            if self._owned:
                self._netlink.close()
            self.done.set()
            on_done()
