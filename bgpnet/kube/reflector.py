"""List, then watch, one kind of object, keeping only what a parser makes of each: client-go's reflector,
for the kinds bgpnet reads besides Nodes (Services, EndpointSlices).

The same rules as the node source (bgpnet.kube.node_source), which is tuned for Nodes and kept apart:
- raw JSON (`_preload_content=False`), parsed by a pure function; nothing of the raw object is kept;
- a watch resumes from the last resourceVersion seen (bookmarks included); only a 410, a watch ERROR or the
  periodic resync re-lists;
- a failed request backs off exponentially and the last known state stays;
- an object that does not parse keeps its last good value (logged once per distinct reason, counted);
- `on_change` gets only the keys whose parsed value changed (None: gone), once per re-list (keys missing from
  the new list are gone) and once per batch of watch events; and always once after the first list.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import urllib3

from bgpnet.kube.watch_stream import TRANSIENT, Backoff, describe, event_batches, shut_on_stop

log = logging.getLogger(__name__)

V = TypeVar("V")



@dataclass(frozen=True)
class ReflectorStats:
    kind: str
    objects: int = 0
    events: Mapping[str, int] = field(default_factory=dict)
    relists: int = 0
    watches: int = 0
    api_errors: int = 0
    bad_updates: int = 0
    bad_objects: Mapping[str, str] = field(default_factory=dict)  # currently bad: key -> reason
    api_reachable: bool = False
    synced: bool = False  # listed at least once
    last_sync_time: float | None = None  # wall clock of the last successful list or watch event
    resource_version: str | None = None


class _Relist(Exception):
    """The watch's resourceVersion left the server's window (410 Gone): list again."""


class _WatchFailed(Exception):
    """Another watch ERROR event (e.g. 504 "too large resource version"): list again after a backoff."""


class _ConsumerFailed(Exception):
    """`on_change` raised: list again after a backoff, handing every value over."""


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name`, or the name alone for a cluster-scoped object (a Node)."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else name


class Reflector(Generic[V]):
    def __init__(self, kind: str, list_fn: Callable[..., Any], parse: Callable[[dict[str, Any]], V],
                 on_change: Callable[[Mapping[str, V | None]], None], *, resync_period: float = 300,
                 watch_timeout: int = 300, backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 request_timeout: float = 60.0) -> None:
        self.kind = kind
        self._list = list_fn
        self._parse = parse
        self._on_change = on_change
        self._resync_period = resync_period
        self._watch_timeout = watch_timeout
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._request_timeout = request_timeout
        self._lock = threading.Lock()
        self._values: dict[str, V] = {}
        self._bad: dict[str, str] = {}
        self._rv: str | None = None
        self._events: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        self._reachable = False
        self._synced = False
        self._last_sync: float | None = None
        self._response: urllib3.BaseHTTPResponse | None = None
        self._deliver_all = False  # the consumer failed: the next re-list hands it every value again

    @property
    def stats(self) -> ReflectorStats:
        with self._lock:
            return ReflectorStats(
                kind=self.kind, objects=len(self._values), events=types.MappingProxyType(dict(self._events)),
                relists=self._counters["relists"], watches=self._counters["watches"],
                api_errors=self._counters["api_errors"], bad_updates=self._counters["bad_updates"],
                bad_objects=types.MappingProxyType(dict(self._bad)), api_reachable=self._reachable,
                synced=self._synced, last_sync_time=self._last_sync, resource_version=self._rv)

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set; returns within a moment of it, even mid-watch."""
        finished = threading.Event()
        aborter = threading.Thread(target=shut_on_stop, args=(stop, finished, self._current_response), daemon=True,
                                   name=f"{self.kind}-abort")
        aborter.start()
        try:
            self._loop(stop)
        finally:
            finished.set()
            aborter.join()

    def _loop(self, stop: threading.Event) -> None:
        must_list, next_resync = True, 0.0
        while not stop.is_set():
            try:
                if must_list or time.monotonic() >= next_resync:
                    self._relist()
                    must_list, next_resync = False, time.monotonic() + self._resync_period
                    self._backoff.reset()
                timeout = max(1, min(self._watch_timeout, math.ceil(next_resync - time.monotonic())))
                if not self._watch(stop, timeout) and not stop.is_set():
                    stop.wait(self._backoff.next())  # ended at once, empty: don't hammer the server
            except _Relist as exc:
                log.info("%s watch from resourceVersion %s ended (%s): re-listing", self.kind, self._rv, exc)
                must_list = True
            except _ConsumerFailed:
                must_list = True
                stop.wait(self._backoff.next())
            except (_WatchFailed, *TRANSIENT) as exc:
                if stop.is_set():
                    break
                if isinstance(exc, _WatchFailed):
                    must_list = True  # client-go's reflector re-lists too
                delay = self._backoff.next()
                with self._lock:
                    self._counters["api_errors"] += 1
                    self._reachable = False
                log.warning("Kubernetes API (%s): %s; keeping %d known, retrying in %.1fs", self.kind,
                            describe(exc), len(self._values), delay)
                stop.wait(delay)

    def _relist(self) -> None:
        response = self._list(_preload_content=False, _request_timeout=self._request_timeout)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        changes: dict[str, V | None] = {}
        with self._lock:
            seen = set()
            for obj in body.get("items") or []:
                key = object_key(obj)
                seen.add(key)
                self._store(key, obj, changes)
            for key in set(self._values) - seen:
                del self._values[key]
                changes[key] = None
            for key in set(self._bad) - seen:
                del self._bad[key]
            again = self._deliver_all
            if again:
                self._deliver_all = False
                changes.update(self._values)
            self._rv = (body.get("metadata") or {}).get("resourceVersion")
            self._counters["relists"] += 1
            first = not self._synced
            self._reachable = self._synced = True
            self._last_sync = time.time()
        # Always once after the first list, even an empty one: the consumer learns the kind is synced; and
        # always after a failed delivery, even with nothing to hand over, so the consumer can retry its own.
        self._deliver(changes, force=first or again)

    def _watch(self, stop: threading.Event, timeout: int) -> bool:
        """One watch request; True if it delivered anything or ran its course."""
        started = time.monotonic()
        response = self._list(watch=True, resource_version=self._rv, allow_watch_bookmarks=True,
                              timeout_seconds=timeout, _preload_content=False,
                              _request_timeout=(min(10.0, self._request_timeout), timeout + 30))
        with self._lock:
            self._response = response
            self._counters["watches"] += 1
            self._reachable = True
        received = 0
        try:
            if stop.is_set():
                return True
            for batch in event_batches(response):
                received += len(batch)
                changes: dict[str, V | None] = {}
                try:
                    for event in batch:
                        self._apply(event, changes)
                finally:
                    self._deliver(changes)
        except TRANSIENT:
            if stop.is_set():
                return True
            raise
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        if received:
            self._backoff.reset()
        return received > 0 or time.monotonic() - started >= min(timeout, 1)

    def _apply(self, event: dict[str, Any], changes: dict[str, V | None]) -> None:
        kind = event.get("type", "")
        obj = event.get("object") or {}
        with self._lock:
            self._events[kind] += 1
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Relist("410 Gone")
                raise _WatchFailed(f"watch ERROR {obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
            key = object_key(obj)
            if kind in ("ADDED", "MODIFIED"):
                self._store(key, obj, changes)
            elif kind == "DELETED":
                self._bad.pop(key, None)
                if self._values.pop(key, None) is not None:
                    changes[key] = None
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self._rv = rv
            self._last_sync = time.time()

    def _store(self, key: str, obj: dict[str, Any], changes: dict[str, V | None]) -> None:
        """Under the lock: parse one object; a bad one keeps its last good value."""
        try:
            value = self._parse(obj)
        except (ValueError, TypeError, AttributeError) as exc:
            # BadNode / BadObject, or a parser tripping over a field of the wrong type: that object is bad, the
            # others are fine. Its last good value stays.
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            self._counters["bad_updates"] += 1
            if self._bad.get(key) != reason:
                log.warning("ignoring update of %s %s: %s (keeping its last good state, if any)", self.kind, key,
                            reason)
            self._bad[key] = reason
            return
        self._bad.pop(key, None)
        if self._values.get(key) != value:
            self._values[key] = value
            changes[key] = value

    def _deliver(self, changes: Mapping[str, V | None], *, force: bool = False) -> None:
        if not changes and not force:
            return
        try:
            self._on_change(changes)
        except Exception:
            # The consumer's bug must not kill the source; the next re-list delivers every value again.
            log.exception("%s on_change failed; re-listing", self.kind)
            with self._lock:
                self._deliver_all = True
            raise _ConsumerFailed() from None

    def _current_response(self) -> urllib3.BaseHTTPResponse | None:
        with self._lock:
            return self._response
