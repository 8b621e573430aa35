"""`DesiredRoutes`: the kernel routes the agent wants, maintained by changed prefixes.

What the agent wants in the kernel is the RIB's best routes, plus stale routes kept over a restart, with next
hops resolved through the kernel. Rebuilding that map on every reconcile is O(table): during a full-table
transfer the reconcile loop wakes once per few UPDATEs, so a 50k-route table was rebuilt (copied, resolved,
re-indexed, diffed) dozens of times — quadratic, and the agent's profile was mostly that. This view is rebuilt
only when something global changed (see `Agent.reconcile`: first round, periodic resync, new peers or
policies, a stale period, next-hop cache invalidated) and otherwise updated for exactly the prefixes the RIB
reports as changed (`Rib.take_changes`); the route table then plans only those (`RouteTable.apply_changes`).

Pure: the kernel lookups hide behind the `resolve` callable (the agent passes its NextHopResolver's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from bgpnet.compact_dict import compacted
from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix

Resolve = Callable[[Mapping[Prefix, KernelRoute]], tuple[dict[Prefix, KernelRoute], list[Prefix]]]


class DesiredRoutes:
    def __init__(self) -> None:
        self.routes: dict[Prefix, KernelRoute] = {}
        # Prefixes left out because no next hop of theirs is reachable.
        self.unresolved: set[Prefix] = set()

    def rebuild(self, learned: Mapping[Prefix, KernelRoute], stale: Mapping[Prefix, KernelRoute],
                resolve: Resolve | None) -> dict[Prefix, KernelRoute]:
        """Compute the whole map again: learned routes win over stale ones for the same prefix."""
        merged = dict(learned)
        for prefix, route in stale.items():
            merged.setdefault(prefix, route)
        if resolve is None:
            routes, unresolved = merged, []
        else:
            routes, unresolved = resolve(merged)
        self.routes = routes
        self.unresolved = set(unresolved)
        return routes

    def update(self, changes: Iterable[tuple[Prefix, KernelRoute | None]], stale: Mapping[Prefix, KernelRoute],
               resolve: Resolve | None) -> None:
        """Recompute the entries of the changed prefixes only: `changes` pairs each with its learned route now
        (None: no learned route; a stale one then stands in if there is one)."""
        # Each dict operation on a prefix costs a hash and a probe of a large table: per prefix this does one
        # insert into `subset` and one into the resolver's output, then merges with `dict.update`, which reuses
        # the hashes the dicts already hold (and one pop for each prefix that goes away).
        subset: dict[Prefix, KernelRoute] = {}
        gone: list[Prefix] = []
        for prefix, route in changes:
            if route is None and stale:
                route = stale.get(prefix)
            if route is None:
                gone.append(prefix)
            else:
                subset[prefix] = route
        if resolve is None:
            resolved, unresolved = subset, []
        else:
            resolved, unresolved = resolve(subset)
        routes = self.routes
        routes.update(resolved)
        for prefix in gone:
            routes.pop(prefix, None)
        for prefix in unresolved:
            routes.pop(prefix, None)
        if gone or unresolved:
            self.routes = compacted(routes)  # after a mass withdrawal, not sized for the peak any more
        if self.unresolved or unresolved:
            self.unresolved.difference_update(subset)
            self.unresolved.difference_update(gone)
            self.unresolved.update(unresolved)
