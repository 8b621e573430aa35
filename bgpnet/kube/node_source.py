"""The agent's view of all Nodes: list, then watch from the list's resourceVersion, as client-go's reflector.

Design decisions:
- Raw JSON, not client models: list bodies and watch lines are `json.loads`-ed and parsed by the pure
  `parse_node`, which is what makes a 5,000-node sync take a fraction of a second instead of seconds.
- Resume, don't re-list: a watch that ends (timeoutSeconds, connection cut, API outage) resumes from the last
  resourceVersion seen, bookmarks included; the API server replays what happened meanwhile. Only a 410 (the
  server's event window no longer covers that resourceVersion) or another watch ERROR event forces a re-list,
  plus the periodic resync, which re-lists every `resync_period` as a safety net for anything missed.
- Outages: every failed request backs off exponentially (`backoff_initial` doubling up to `backoff_max`) and
  the last known state stays in place: routes are not withdrawn because the control plane is unreachable.
- Bad Nodes keep their last good state. A Node's podCIDRs are immutable once set, so a Node turning bad
  in practice means its InternalIP vanished for a moment (kubelet or cloud-provider hiccup); withdrawing its
  routes would cut its running pods off for a transient glitch, while its last address and ranges are still
  where those pods live. A bad Node never seen good is absent from the snapshot. Either way it is logged
  (once per distinct reason), counted and listed in `stats.bad_nodes`; deletion removes it as usual.
- `on_change` receives the whole snapshot, only when it differs from the previous one (so status heartbeats
  that change nothing bgpnet reads cost nothing downstream), once per re-list and once per batch of watch
  events that arrived together; and always once after the first successful list, so the agent knows the
  initial state even for an empty cluster.
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
from typing import Any

import urllib3
from kubernetes import client

from bgpnet.kube.node_parse import BadNode, parse_node
from bgpnet.kube.watch_stream import TRANSIENT, Backoff, describe, event_batches, shut_on_stop
from bgpnet.model import NodeInfo

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class NodeSourceStats:
    """A consistent copy of the node source's counters, for metrics and status output."""

    events: Mapping[str, int] = field(default_factory=dict)  # watch events by type (ADDED, BOOKMARK, ...)
    relists: int = 0
    watches: int = 0  # watch requests started
    api_errors: int = 0
    bad_node_updates: int = 0  # ADDED/MODIFIED/listed objects that failed to parse
    bad_nodes: Mapping[str, str] = field(default_factory=dict)  # currently bad: name -> reason
    api_reachable: bool = False
    last_sync_time: float | None = None  # wall clock of the last successful list or watch event
    resource_version: str | None = None
    nodes: int = 0


class _WatchExpired(Exception):
    """The watch stream reported 410: the resourceVersion left the server's window; re-list."""


class _WatchFailed(Exception):
    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(f"watch ERROR {status.get('code')} {status.get('reason')}: {status.get('message')}")


class NodeSource:
    def __init__(
        self,
        api: client.ApiClient,
        on_change: Callable[[Mapping[str, NodeInfo]], None],
        *,
        resync_period: float = 300,
        watch_timeout: int = 300,
        backoff_max: float = 30.0,
        backoff_initial: float = 0.5,
        request_timeout: float = 60.0,
    ) -> None:
        self._api = client.CoreV1Api(api)
        self._on_change = on_change
        self._resync_period = resync_period
        self._watch_timeout = watch_timeout
        self._backoff = Backoff(backoff_initial, backoff_max)
        self._request_timeout = request_timeout
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeInfo] = {}
        self._bad: dict[str, str] = {}
        self._published: dict[str, NodeInfo] | None = None
        self._rv: str | None = None
        self._events: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        self._reachable = False
        self._last_sync: float | None = None
        self._response: urllib3.BaseHTTPResponse | None = None

    # ---- public ------------------------------------------------------------------------------------------

    def snapshot(self) -> Mapping[str, NodeInfo]:
        with self._lock:
            return types.MappingProxyType(dict(self._nodes))

    @property
    def stats(self) -> NodeSourceStats:
        with self._lock:
            return NodeSourceStats(
                events=types.MappingProxyType(dict(self._events)),
                relists=self._counters["relists"],
                watches=self._counters["watches"],
                api_errors=self._counters["api_errors"],
                bad_node_updates=self._counters["bad_node_updates"],
                bad_nodes=types.MappingProxyType(dict(self._bad)),
                api_reachable=self._reachable,
                last_sync_time=self._last_sync,
                resource_version=self._rv,
                nodes=len(self._nodes),
            )

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set; returns within a moment of it even mid-watch."""
        finished = threading.Event()
        aborter = threading.Thread(target=shut_on_stop, args=(stop, finished, self._current_response), daemon=True,
                                   name="node-source-abort")
        aborter.start()
        try:
            self._loop(stop)
        finally:
            finished.set()
            aborter.join()

    # ---- the list/watch loop -----------------------------------------------------------------------------

    def _loop(self, stop: threading.Event) -> None:
        must_list = True
        next_resync = 0.0
        while not stop.is_set():
            try:
                if must_list or time.monotonic() >= next_resync:
                    self._relist()
                    must_list = False
                    next_resync = time.monotonic() + self._resync_period
                    self._backoff.reset()
                timeout = max(1, min(self._watch_timeout, math.ceil(next_resync - time.monotonic())))
                productive = self._watch(stop, timeout)
                if not productive and not stop.is_set():
                    # A watch that ended at once with nothing in it: don't hammer the server.
                    stop.wait(self._backoff.next())
            except _WatchExpired:
                log.info("watch from resourceVersion %s expired (410): re-listing nodes", self._rv)
                must_list = True
            except (_WatchFailed, *TRANSIENT) as exc:
                if stop.is_set():
                    break
                if isinstance(exc, _WatchFailed):
                    must_list = True  # e.g. 504 "too large resource version": the reflector re-lists too
                delay = self._backoff.next()
                with self._lock:
                    self._counters["api_errors"] += 1
                    self._reachable = False
                log.warning("Kubernetes API: %s; keeping %d known nodes, retrying in %.1fs",
                            describe(exc), len(self._nodes), delay)
                stop.wait(delay)

    def _relist(self) -> None:
        # The raw response, parsed here: building the client's models for thousands of Nodes costs seconds.
        response = self._api.list_node(_preload_content=False, _request_timeout=self._request_timeout)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        with self._lock:
            previous = self._nodes
            nodes: dict[str, NodeInfo] = {}
            bad: dict[str, str] = {}
            for obj in body.get("items") or []:
                name = (obj.get("metadata") or {}).get("name", "")
                try:
                    nodes[name] = parse_node(obj)
                except BadNode as exc:
                    self._note_bad(exc)
                    bad[name] = exc.reason
                    if name in previous:
                        nodes[name] = previous[name]
            self._nodes, self._bad = nodes, bad
            self._rv = (body.get("metadata") or {}).get("resourceVersion")
            self._counters["relists"] += 1
            self._reachable = True
            self._last_sync = time.time()
            first = self._published is None
        self._publish(force=first)

    def _watch(self, stop: threading.Event, timeout: int) -> bool:
        """One watch request; True if it delivered anything or ran its course (not an immediate empty end)."""
        started = time.monotonic()
        response = self._api.list_node(
            watch=True,
            resource_version=self._rv,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _preload_content=False,  # a stream of watch events, read line by line
            # Connect quickly or fail; the read may legitimately idle for the whole watch.
            _request_timeout=(min(10.0, self._request_timeout), timeout + 30),
        )
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
                for event in batch:
                    self._apply(event)
                self._publish()
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

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        obj = event.get("object") or {}
        if kind == "ERROR":
            with self._lock:
                self._events[kind] += 1
            if obj.get("code") == 410:
                raise _WatchExpired()
            raise _WatchFailed(obj)
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        with self._lock:
            self._events[kind] += 1
            if kind in ("ADDED", "MODIFIED"):
                try:
                    self._nodes[name] = parse_node(obj)
                    self._bad.pop(name, None)
                except BadNode as exc:
                    self._note_bad(exc)
                    self._bad[name] = exc.reason
            elif kind == "DELETED":
                self._nodes.pop(name, None)
                self._bad.pop(name, None)
            if meta.get("resourceVersion"):
                self._rv = meta["resourceVersion"]
            self._last_sync = time.time()

    def _note_bad(self, exc: BadNode) -> None:
        self._counters["bad_node_updates"] += 1
        if self._bad.get(exc.name) != exc.reason:
            log.warning("ignoring update of %s (keeping its last good state, if any)", exc)

    def _publish(self, *, force: bool = False) -> None:
        with self._lock:
            if not force and self._nodes == self._published:
                return
            self._published = dict(self._nodes)
            snapshot = types.MappingProxyType(dict(self._nodes))
        try:
            self._on_change(snapshot)
        except Exception:
            # The consumer's bug must not kill the node source; hand over the next snapshot even if equal.
            log.exception("on_change failed; the next change will be delivered again in full")
            with self._lock:
                self._published = None

    def _current_response(self) -> urllib3.BaseHTTPResponse | None:
        with self._lock:
            return self._response
