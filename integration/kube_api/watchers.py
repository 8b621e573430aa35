"""Open watches: one queue per watcher, filled by the store under its lock, drained by the serving thread.

Like the watch cache's per-watcher channel, a compaction never disturbs a watch that is already running; with
a label or field selector an object moving out of the selection is delivered as DELETED and one moving in as
ADDED (cacheWatcher.convertToWatchEvent); a DELETED event carries the last state of the object stamped with the
deletion's resourceVersion.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .selectors import Predicate

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class Event:
    rv: int
    type: str
    resource: str  # Resource.key
    obj: dict[str, Any]
    prev: dict[str, Any] | None


class Watcher:
    """One open watch: the store pushes (type, object) pairs, the serving thread drains them."""

    def __init__(self, store: Store, resource: str, namespace: str | None, predicate: Predicate) -> None:
        self._store = store
        self.resource = resource
        self.namespace = namespace
        self.predicate = predicate
        self.pending: deque[tuple[str, dict[str, Any]]] = deque()
        self.closed = False

    def wants(self, obj: dict[str, Any]) -> bool:
        if self.namespace is not None and obj.get("metadata", {}).get("namespace", "") != self.namespace:
            return False
        return self.predicate(obj)

    def offer(self, event: Event) -> None:
        now_in = self.wants(event.obj) if event.type != "DELETED" else False
        was_in = event.prev is not None and self.wants(event.prev)
        if event.type == "DELETED":
            if was_in:
                self.pending.append(("DELETED", event.obj))
        elif now_in and was_in:
            self.pending.append(("MODIFIED", event.obj))
        elif now_in:
            self.pending.append(("ADDED", event.obj))
        elif was_in:
            prev = dict(event.prev or {})
            prev["metadata"] = {**prev.get("metadata", {}), "resourceVersion": str(event.rv)}
            self.pending.append(("DELETED", prev))

    def take(self, until: float) -> list[tuple[str, dict[str, Any]]] | None:
        """Events queued so far, waiting until `until` (monotonic) for one; None once the watch is closed."""
        with self._store.cond:
            while not self.pending and not self.closed:
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return []
                self._store.cond.wait(remaining)
            if self.closed:
                return None
            events = list(self.pending)
            self.pending.clear()
            return events

    def bookmark_rv(self) -> int | None:
        """The store's resourceVersion if everything before it was delivered (else no bookmark now)."""
        with self._store.cond:
            return None if self.pending else self._store.rv

    def close(self) -> None:
        self._store.forget(self)
