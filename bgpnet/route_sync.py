"""Route sync: the RIB's best routes (and stale ones kept over a restart) into the kernel, and the record of it.

Each reconcile round takes the prefixes the RIB changed since the last round and applies only those
(O(changes)); anything global — the first round, a periodic resync, new peers or policies, a stale period,
a new RIB after an ExaBGP restart, next hops resolved anew — rebuilds the whole desired map instead
(bgpnet.routes.desired). The periodic resync reads the kernel on the route table's own thread, so withdrawals
keep flowing while a 50k-route dump is read; the repair goes out on the round after the dump is in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bgpnet.agent_ports import NextHopPort, RouteTablePort
from bgpnet.agent_records import RouteSyncRecord
from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib
from bgpnet.routes.desired import DesiredRoutes
from bgpnet.routes.table import ApplyResult
from bgpnet.snapshot import RouteSyncStatus

log = logging.getLogger("bgpnet.agent")


@dataclass(frozen=True)
class SyncRound:
    """What one round takes from the RIB under the agent's lock: each changed prefix with its learned route now
    (None: withdrawn), and, when the whole map is rebuilt, a copy of every learned route."""

    changed: dict[Prefix, KernelRoute | None]
    rebuild: bool
    learned: Mapping[Prefix, KernelRoute]
    resync: bool
    source: tuple[object, object]


class RouteSync:
    def __init__(self, table: RouteTablePort, next_hops: NextHopPort | None, *, period: float) -> None:
        self._table = table
        self._next_hops = next_hops
        self._period = period
        self._desired = DesiredRoutes()
        # Which RIB object and which next-hop cache generation the desired map was computed from: anything else
        # forces a rebuild (a fake resolver without a generation: always).
        self._desired_from: tuple[object, object] | None = None
        self._last_resync = 0.0
        self._unresolved = 0
        self._lock = threading.Lock()  # guards `_record`, which status and metrics read from other threads
        self._record = RouteSyncRecord()

    def resync_due(self, now: float) -> bool:
        return now - self._last_resync >= self._period

    def until_resync(self, now: float) -> float:
        return self._last_resync + self._period - now

    def take(self, rib: Rib, *, resync: bool, force_rebuild: bool) -> SyncRound:
        """Under the agent's lock (the speaker's reader thread keeps updating the RIB): the changes since the
        last round, and a copy of the learned routes if the whole map is to be rebuilt."""
        changed = rib.take_changes()
        source = (rib, self._next_hops.generation if self._next_hops is not None else None)
        rebuild = resync or force_rebuild or self._desired_from != source
        # Until this round has applied its changes, a failure must make the next round rebuild (the changes
        # just taken would otherwise be forgotten).
        self._desired_from = None
        return SyncRound(changed, rebuild, dict(rib.routes) if rebuild else {}, resync, source)

    def run(self, round_: SyncRound, stale: Mapping[Prefix, KernelRoute], *, own_node_known: bool, now: float,
            wake: Callable[[], None]) -> ApplyResult:
        """Outside the lock: compute the desired routes, program the kernel, record what it did."""
        resolve = self._next_hops.resolve if self._next_hops is not None else None
        if round_.rebuild:
            desired = self._desired.rebuild(round_.learned, stale, resolve)
        else:
            self._desired.update(round_.changed.items(), {}, resolve)
            desired = self._desired.routes
        self._log_unresolved()
        if round_.resync:
            # The kernel is read on the route table's own thread (hundreds of ms at 50k routes): changes keep
            # flowing meanwhile, and the repair goes out on the round after the dump is in (it wakes us).
            self._table.start_resync(wake)
            self._last_resync = now
        repaired = self._table.finish_resync(desired.values()) if self._table.resync_running() else None
        if repaired is not None:
            result, kind = repaired, "resync"
        elif not round_.rebuild:
            result, kind = self._table.apply_changes(desired, round_.changed), "apply"  # O(changes)
        else:
            result, kind = self._table.apply(desired.values()), "apply"
        self._desired_from = round_.source
        self._record_result(kind, result, own_node_known=own_node_known)
        return result

    def _log_unresolved(self) -> None:
        """Learned routes are installed via gateways the kernel can reach (bgpnet.routes.resolve); say when
        the number of routes left out for an unreachable next hop changes."""
        unresolved = self._desired.unresolved
        if len(unresolved) != self._unresolved:
            self._unresolved = len(unresolved)
            if unresolved:
                log.warning("routes with unreachable next hops left out count=%d first=%s", len(unresolved),
                            min(unresolved, key=lambda p: (p.version, p)))

    def _record_result(self, kind: str, result: ApplyResult, *, own_node_known: bool) -> None:
        errors = result.errors
        changes = {"add": result.added, "replace": result.replaced, "delete": result.removed}
        record = self._record
        # The route table keeps its per-family count current at O(changes); asked only when something changed.
        count_again = (kind == "resync" or errors or any(changes.values())
                       or len(self._table.installed()) != sum(record.installed.values()))
        installed = self._table.installed_by_family() if count_again else record.installed
        with self._lock:
            record.durations[kind].observe(result.duration_s)
            record.errors.update(e.reason for e in errors)
            record.changes.update(changes)
            if count_again:
                record.installed = installed
            record.last_time = time.time()
            record.last_errors = len(errors)
            record.last_duration_s = result.duration_s
            record.programmed = own_node_known and not errors

    @property
    def programmed(self) -> bool:
        """The last round knew our own Node and programmed every route without an error."""
        with self._lock:
            return self._record.programmed

    def status(self, stale: int) -> RouteSyncStatus:
        with self._lock:
            record = self._record
            return RouteSyncStatus(
                installed=dict(record.installed), stale=stale,
                durations={kind: h.snapshot() for kind, h in record.durations.items()},
                errors=dict(record.errors), changes=dict(record.changes), last_sync_time=record.last_time,
                last_sync_errors=record.last_errors, last_duration_s=record.last_duration_s)

    def dump(self) -> Mapping[Prefix, KernelRoute]:
        """What the kernel holds now (bgpnet's own routes), read at start-up."""
        return self._table.dump()

    def close(self) -> None:
        self._table.close()
