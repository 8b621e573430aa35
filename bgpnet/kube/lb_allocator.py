"""The LoadBalancer address allocator: one writer in the cluster, elected through a Lease (bgpnet.kube.leader).

Every agent runs one and campaigns; the leader lists every Service (raw JSON, `parse_service`), decides with
the pure `bgpnet.lb_allocation.allocate`, and writes `status.loadBalancer.ingress` through the status
subresource only where it differs; then it watches Services and decides again on every batch of events.

Nothing is given twice, also across a failover:
- the addresses in use are those in every Service's status, read from a *fresh full list* at the start of
  every term (never from a previous term's memory), so a new leader sees everything its predecessor wrote;
- a write carries the resourceVersion the decision was based on (a 409 means the Service changed: the watch
  brings the change and the next decision uses it);
- before every write the allocator checks that it still leads, and the elector stops leading before its
  Lease can expire (bgpnet.kube.leader), so two leaders never write at the same time. A lost leadership also
  cuts the watch at once.

Events on the Service, once per distinct outcome: `Warning AllocationFailed` with the reason while it stays
pending, `Normal IPAllocated` when addresses are written; the recorder's per-object spam filter bounds them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bgpnet.config import LoadBalancerSettings
from bgpnet.kube.events import EventRecorder, EventWriter, InvolvedObject
from bgpnet.kube.leader import DEFAULT_NAMESPACE, LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD, LeaderElector
from bgpnet.kube.service_parse import BadObject, parse_service
from bgpnet.kube.watch_stream import TRANSIENT, Backoff, event_batches
from bgpnet.lb_allocation import Allocation, PoolUsage, allocate
from bgpnet.model import IPAddress, ServiceInfo
from bgpnet.node_events import NORMAL, WARNING, NodeEvent

log = logging.getLogger(__name__)

EVENT_QUEUE = 5000


@dataclass(frozen=True)
class AllocatorStats:
    """A consistent copy of the allocator's figures, for metrics and status output."""

    leader: bool = False
    term: int = 0
    holder: str | None = None  # the Lease's holder as last observed
    services: int = 0  # served LoadBalancer Services (as of the last decision, while leading)
    pending: int = 0  # served Services missing an address of some family
    pools: Mapping[str, PoolUsage] = field(default_factory=dict)
    allocation_failures: int = 0  # counter: a Service newly pending, or pending for a new reason
    status_writes: int = 0
    status_conflicts: int = 0  # writes refused because the Service changed (409) or went (404)
    api_errors: int = 0
    relists: int = 0
    last_decision_seconds: float = 0.0


class _LostLeadership(Exception):
    pass


class _Restart(Exception):
    """The watch cannot continue (410 or an ERROR event): list again."""


class LoadBalancerAllocator:
    def __init__(
        self,
        api: client.ApiClient,
        settings: LoadBalancerSettings,
        identity: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        lease_duration: int = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        release_on_stop: bool = True,
        watch_timeout: int = 300,
        request_timeout: float = 30.0,
        backoff_max: float = 30.0,
        events: EventRecorder | None = None,
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._settings = settings
        self.elector = LeaderElector(api, identity, namespace, lease_duration=lease_duration,
                                     renew_deadline=renew_deadline, retry_period=retry_period,
                                     release_on_stop=release_on_stop)
        self._events = events or EventRecorder(EventWriter(api, identity), queue_size=EVENT_QUEUE)
        self._own_events = events is None
        self._watch_timeout = watch_timeout
        self._request_timeout = request_timeout
        self._backoff = Backoff(0.5, backoff_max)
        self._poll = min(0.1, retry_period / 2)
        self._lock = threading.Lock()
        self._services: dict[str, ServiceInfo] = {}
        self._versions: dict[str, str] = {}  # key -> resourceVersion the cached Service was read at
        self._uids: dict[str, str] = {}
        self._rv: str | None = None
        self._reported: dict[str, str] = {}  # key -> the last outcome an Event was emitted for
        self._stats = AllocatorStats()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._stop = threading.Event()

    def stats(self) -> AllocatorStats:
        with self._lock:
            return AllocatorStats(**{**self._stats.__dict__, "leader": self.elector.leading(),
                                     "term": self.elector.term(), "holder": self.elector.holder()})

    # ---- the loop ----------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Campaign, and allocate while leading, until `stop` is set; then release the Lease."""
        self._stop = stop
        elector_stop = threading.Event()
        elector = threading.Thread(target=self.elector.run, args=(elector_stop,), name="lb-leader", daemon=True)
        aborter = threading.Thread(target=self._abort_watches, args=(stop,), name="lb-abort", daemon=True)
        if self._own_events:
            self._events.start()
        elector.start()
        aborter.start()
        try:
            while not stop.is_set():
                if not self.elector.leading():
                    stop.wait(self._poll)
                    continue
                try:
                    self._lead(stop, self.elector.term())
                except _LostLeadership:
                    log.info("no longer the LoadBalancer allocator: stopped writing")
                except TRANSIENT as exc:
                    if stop.is_set():
                        break
                    self._count("api_errors")
                    delay = self._backoff.next()
                    log.warning("LoadBalancer allocator: Kubernetes API: %s; retrying in %.1fs", exc, delay)
                    stop.wait(delay)
        finally:
            # Writing has stopped (this thread): only now may the Lease go to a successor.
            elector_stop.set()
            elector.join()
            aborter.join()
            if self._own_events:
                self._events.stop()

    def _still_leading(self, term: int) -> bool:
        return self.elector.leading() and self.elector.term() == term

    def _lead(self, stop: threading.Event, term: int) -> None:
        # A new term starts from a fresh full list: the in-use addresses are what every Service's status says.
        self._relist()
        self._decide(term)
        while not stop.is_set():
            if not self._still_leading(term):
                raise _LostLeadership()
            try:
                self._watch(stop, term)
            except _Restart:
                self._relist()
                self._decide(term)

    def _relist(self) -> None:
        response = self._core.list_service_for_all_namespaces(_preload_content=False,
                                                              _request_timeout=self._request_timeout)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        services, versions, uids = {}, {}, {}
        for obj in body.get("items") or []:
            parsed = self._parse(obj)
            if parsed is not None:
                key, service, meta = parsed
                services[key], versions[key], uids[key] = service, meta.get("resourceVersion", ""), meta.get("uid", "")
        with self._lock:
            self._services, self._versions, self._uids = services, versions, uids
            self._rv = (body.get("metadata") or {}).get("resourceVersion")
            self._stats = _with(self._stats, relists=self._stats.relists + 1)
        self._backoff.reset()

    def _parse(self, obj: dict[str, Any]) -> tuple[str, ServiceInfo, dict[str, Any]] | None:
        try:
            service = parse_service(obj).service
        except BadObject as exc:
            log.warning("ignoring %s", exc)
            return None
        return service.key, service, obj.get("metadata") or {}

    def _watch(self, stop: threading.Event, term: int) -> None:
        response = self._core.list_service_for_all_namespaces(
            watch=True, resource_version=self._rv, allow_watch_bookmarks=True, timeout_seconds=self._watch_timeout,
            _preload_content=False, _request_timeout=(min(10.0, self._request_timeout), self._watch_timeout + 30))
        with self._lock:
            self._response = response
        try:
            for batch in event_batches(response):
                for event in batch:
                    self._apply(event)
                if stop.is_set():
                    return
                self._decide(term)
        except TRANSIENT:
            if stop.is_set() or not self._still_leading(term):
                return  # the socket was shut down on purpose
            raise
        finally:
            with self._lock:
                self._response = None
            response.release_conn()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type", ""), event.get("object") or {}
        if kind == "ERROR":
            log.info("Service watch ended with %s %s: re-listing", obj.get("code"), obj.get("reason"))
            raise _Restart()
        meta = obj.get("metadata") or {}
        with self._lock:
            if meta.get("resourceVersion"):
                self._rv = meta["resourceVersion"]
        if kind == "BOOKMARK":
            return
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        with self._lock:
            if kind == "DELETED":
                self._services.pop(key, None)
                self._versions.pop(key, None)
                self._uids.pop(key, None)
                self._reported.pop(key, None)
                return
        parsed = self._parse(obj)
        if parsed is not None:
            self._remember(*parsed)

    def _remember(self, key: str, service: ServiceInfo, meta: dict[str, Any]) -> None:
        with self._lock:
            self._services[key] = service
            self._versions[key] = meta.get("resourceVersion", "")
            self._uids[key] = meta.get("uid", "")

    def _abort_watches(self, stop: threading.Event) -> None:
        # A blocked read on the watch socket returns only when data arrives: shut it down to stop promptly, on
        # `stop` and as soon as leadership is lost.
        while not stop.wait(self._poll):
            if not self.elector.leading():
                self._shutdown_watch()
        self._shutdown_watch()

    def _shutdown_watch(self) -> None:
        with self._lock:
            response = self._response
        if response is not None:
            response.shutdown()

    # ---- deciding and writing ----------------------------------------------------------------------------

    def _decide(self, term: int) -> None:
        started = time.perf_counter()
        with self._lock:
            services = dict(self._services)
        allocation = allocate(self._settings, services.values())
        with self._lock:
            self._stats = _with(self._stats, services=len(allocation.assigned), pending=len(allocation.pending),
                                pools=types.MappingProxyType(dict(allocation.pools)),
                                last_decision_seconds=time.perf_counter() - started)
        for key, ips in allocation.assigned.items():
            if ips != services[key].ingress_ips:
                self._write(term, key, ips)
        for key in allocation.cleared:
            self._write(term, key, ())
        self._report(allocation)

    def _write(self, term: int, key: str, ips: tuple[IPAddress, ...]) -> None:
        if self._stop.is_set() or not self._still_leading(term):
            raise _LostLeadership()
        namespace, name = key.split("/", 1)
        with self._lock:
            version = self._versions.get(key)
        # A JSON merge patch of the whole ingress list (null removes it), conditional on the resourceVersion
        # the decision saw.
        body: dict[str, Any] = {"status": {"loadBalancer": {"ingress": [{"ip": str(ip)} for ip in ips] or None}}}
        if version:
            body["metadata"] = {"resourceVersion": version}
        try:
            response = self._core.patch_namespaced_service_status(
                name, namespace, body, _content_type="application/merge-patch+json", _preload_content=False,
                _request_timeout=self._request_timeout)
        except ApiException as exc:
            if exc.status in (404, 409):
                self._count("status_conflicts")  # the watch brings the change; the next decision uses it
                return
            if exc.status is not None and 400 <= exc.status < 500:
                self._count("api_errors")  # refused for this Service only (e.g. 422): the others go on
                log.warning("Service %s: status write refused: HTTP %s %s", key, exc.status, exc.reason)
                return
            raise
        self._count("status_writes")
        parsed = self._parse(json.loads(response.data))
        if parsed is not None:
            # What we wrote is in use from now on, before the watch even reports it.
            self._remember(*parsed)
        if ips:
            self._event(key, "assigned " + ", ".join(map(str, ips)),
                        NodeEvent(NORMAL, "IPAllocated", f"assigned LoadBalancer address(es) "
                                                         f"{', '.join(map(str, ips))}"))
        log.info("Service %s: LoadBalancer ingress set to [%s]", key, ", ".join(map(str, ips)))

    def _report(self, allocation: Allocation) -> None:
        for key, reasons in allocation.pending.items():
            reason = "; ".join(reasons)
            if self._event(key, "pending " + reason, NodeEvent(WARNING, "AllocationFailed",
                                                               f"no LoadBalancer address: {reason}")):
                self._count("allocation_failures")
                log.warning("Service %s: LoadBalancer address pending: %s", key, reason)

    def _event(self, key: str, outcome: str, event: NodeEvent) -> bool:
        """Emit `event` unless `outcome` is what was last reported for the Service; True when emitted."""
        with self._lock:
            if self._reported.get(key) == outcome:
                return False
            self._reported[key] = outcome
            uid = self._uids.get(key, "")
        namespace, name = key.split("/", 1)
        self._events.emit_about(InvolvedObject("Service", name, namespace, uid), event)
        return True

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats = _with(self._stats, **{name: getattr(self._stats, name) + 1})


def _with(stats: AllocatorStats, **changes: Any) -> AllocatorStats:
    return AllocatorStats(**{**stats.__dict__, **changes})
