"""The agent's RIB: routes learned per peer (after import policy) and the kernel routes they imply.

ExaBGP keeps no Adj-RIB-In that bgpnet can query and never withdraws a peer's routes when its session drops,
so bgpnet keeps its own. It is maintained incrementally — an UPDATE touches only the prefixes it carries — so
tens of thousands of routes cost nothing per reconcile beyond the prefixes that changed. Pure data, no I/O.

The RIB also remembers *which* kernel routes changed since the consumer last asked (`take_changes`), so the
agent updates its desired route set and the kernel by those prefixes only: during a full-table transfer a
reconcile then costs O(prefixes in the UPDATEs since the last one), not O(table) — with a 50k-route table and
dozens of reconciles per burst the difference is quadratic.

Memory: one entry per prefix per structure. The paths of a prefix are found in the per-peer tables (one
dict lookup per peer), not in a per-prefix map of paths, which cost a small dict per prefix (~230 bytes, a
third of a route's footprint) to serve the rare prefix that several peers offer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping

from bgpnet.compact_dict import compacted
from bgpnet.config import TEARDOWN
from bgpnet.model import IPAddress, KernelRoute, LearnedRoute, Rejected
from bgpnet.policy import MAX_PREFIX, ImportPolicy
from bgpnet.prefix import Prefix


def best_routes(candidates: Iterable[LearnedRoute]) -> KernelRoute | None:
    """Pick the paths to install for one prefix: the shortest AS path wins (RFC 4271 §9.1.2.2 b), and all
    paths of that length become one ECMP route, as `maximum-paths` does on a router."""
    if isinstance(candidates, Collection) and len(candidates) == 1:
        # The common case by far (one peer offers the prefix): nothing to compare.
        for only in candidates:
            return KernelRoute(only.prefix, (only.next_hop,))
    best: list[LearnedRoute] = []
    best_len = None
    for route in candidates:
        length = len(route.as_path)
        if best_len is None or length < best_len:
            best, best_len = [route], length
        elif length == best_len:
            best.append(route)
    if not best:
        return None
    return KernelRoute(best[0].prefix, tuple(r.next_hop for r in best))


class Rib:
    def __init__(self) -> None:
        self._by_peer: dict[IPAddress, dict[Prefix, LearnedRoute]] = {}
        self._routes: dict[Prefix, KernelRoute] = {}
        # Prefixes whose entry in `routes` was added, replaced or removed since the last take_changes(), with
        # that entry now (None: removed). The consumer gets the routes with the prefixes and needs no lookup.
        self._changed: dict[Prefix, KernelRoute | None] = {}
        self.rejected: Counter[tuple[IPAddress, str]] = Counter()
        # Peers that sent more than their max-prefix, with the configured action ("warn" or "teardown").
        self.over_limit: dict[IPAddress, str] = {}

    @property
    def routes(self) -> Mapping[Prefix, KernelRoute]:
        """The kernel routes implied by what is learned now (a live view: copy it before handing it on)."""
        return self._routes

    def take_changes(self) -> dict[Prefix, KernelRoute | None]:
        """The prefixes whose kernel route changed since the previous call, each with its route now (None: no
        route any more), and forget them."""
        changed, self._changed = self._changed, {}
        return changed

    def accepted(self, peer: IPAddress) -> int:
        return len(self._by_peer.get(peer, ()))

    def peers(self) -> tuple[IPAddress, ...]:
        return tuple(self._by_peer)

    def prefixes(self, peer: IPAddress) -> frozenset[Prefix]:
        """The prefixes accepted from `peer` now."""
        return frozenset(self._by_peer.get(peer, ()))

    def update(self, peer: IPAddress, announced: Iterable[LearnedRoute], withdrawn: Iterable[Prefix],
               policy: ImportPolicy) -> list[Rejected]:
        """Apply one UPDATE from `peer`; returns what the policy refused. A refused announcement still
        implicitly withdraws the peer's earlier path for that prefix (RFC 4271 §3.1)."""
        rejected: list[Rejected] = []
        table = self._by_peer.setdefault(peer, {})
        single_path = len(self._by_peer) == 1  # with one peer, no prefix has another path to compare
        touched: set[Prefix] = set()
        for prefix in withdrawn:
            if table.pop(prefix, None) is not None:
                touched.add(prefix)  # the best of what other peers still offer, if anything
        reject_reason = policy.reject_reason
        for route in announced:
            prefix = route.prefix
            reason = reject_reason(route)
            if reason is not None:
                rejected.append(Rejected(peer, prefix, reason))
                self.rejected[(peer, reason)] += 1
                if table.pop(prefix, None) is not None:
                    touched.add(prefix)
                continue
            table[prefix] = route
            if single_path or prefix not in self._routes:
                # A prefix only this peer offers (the common case: no kernel route yet, or this is the only
                # peer): its kernel route follows directly, without another pass over `touched`.
                self._routes[prefix] = self._changed[prefix] = KernelRoute(prefix, (route.next_hop,))
            else:
                touched.add(prefix)
        self._recompute(touched)
        if touched:  # something left: after a mass withdrawal the tables are not kept sized for their peak
            self._by_peer[peer] = table = compacted(table)
            self._routes = compacted(self._routes)
        if policy.max_prefixes and len(table) > policy.max_prefixes:
            if peer not in self.over_limit:
                self.over_limit[peer] = policy.max_prefix_action
            if policy.max_prefix_action == TEARDOWN:
                # Like BIRD's `import limit ... action disable/restart`: nothing from this peer is trusted
                # any more; the agent takes the session down. Every dropped route counts as rejected.
                for route in list(table.values()):
                    rejected.append(Rejected(peer, route.prefix, MAX_PREFIX))
                    self.rejected[(peer, MAX_PREFIX)] += 1
                self.drop_peer(peer)
        else:
            self.over_limit.pop(peer, None)
        return rejected

    def reject_all(self, peer: IPAddress, announced: Iterable[LearnedRoute], reason: str) -> list[Rejected]:
        """Count an UPDATE refused as a whole (e.g. from a peer torn down for max-prefix)."""
        rejected = [Rejected(peer, route.prefix, reason) for route in announced]
        if rejected:
            self.rejected[(peer, reason)] += len(rejected)
        return rejected

    def drop_peer(self, peer: IPAddress) -> int:
        """Forget everything learned from `peer` (session down or peer removed); returns how many routes."""
        table = self._by_peer.pop(peer, {})
        self._recompute(table.keys())
        self._routes = compacted(self._routes)
        return len(table)

    def refilter(self, policy: ImportPolicy | Callable[[IPAddress], ImportPolicy]) -> list[Rejected]:
        """Re-check every stored route after the policy changed (e.g. this node's own CIDRs changed);
        `policy` is one policy for all peers or a function giving each peer's."""
        rejected: list[Rejected] = []
        for peer, table in list(self._by_peer.items()):
            policy_of = policy if isinstance(policy, ImportPolicy) else policy(peer)
            bad = [r for r in table.values() if policy_of.reject_reason(r) is not None]
            for route in bad:
                reason = policy_of.reject_reason(route) or ""
                rejected.append(Rejected(peer, route.prefix, reason))
                self.rejected[(peer, reason)] += 1
            if bad:
                self.update(peer, (), [r.prefix for r in bad], policy_of)
        return rejected

    def _recompute(self, prefixes: Iterable[Prefix]) -> None:
        tables = list(self._by_peer.values())
        for prefix in prefixes:
            candidates = [path for table in tables if (path := table.get(prefix)) is not None]
            route = best_routes(candidates) if candidates else None
            if route is None:
                if self._routes.pop(prefix, None) is not None:
                    self._changed[prefix] = None
            elif self._routes.get(prefix) != route:
                self._routes[prefix] = self._changed[prefix] = route
