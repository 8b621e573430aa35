"""The agent's view of Services and EndpointSlices: two reflectors (bgpnet.kube.reflector), reduced to what
this node announces from.

Kept in memory: one `ServiceInfo` per Service and, per EndpointSlice, one number — its ready, non-terminating
endpoints on this node (`SliceFacts`). A Service "has a ready local endpoint" when the sum over its slices
is positive. The callback gets only what changed: the Services that changed (None: deleted) and the Services
whose local-endpoint fact flipped, so one EndpointSlice change costs one Service's decision downstream.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kubernetes import client

from bgpnet.kube.reflector import Reflector, ReflectorStats
from bgpnet.kube.service_parse import SliceFacts, parse_service, parse_slice
from bgpnet.model import ServiceInfo

log = logging.getLogger(__name__)

ServiceCallback = Callable[[Mapping[str, ServiceInfo | None], Mapping[str, bool]], None]


@dataclass(frozen=True)
class ServiceSourceStats:
    services: int = 0
    slices: int = 0
    services_with_local_endpoints: int = 0
    relists: int = 0
    api_errors: int = 0
    bad_objects: int = 0  # objects whose last update could not be used
    dropped_addresses: int = 0  # addresses in Services that do not parse (left out)
    api_reachable: bool = False
    synced: bool = False  # both kinds listed and handed over


class ServiceSource:
    def __init__(self, api: client.ApiClient, node_name: str, on_change: ServiceCallback, **timings: float) -> None:
        self._node_name = node_name
        self._on_change = on_change
        self._lock = threading.Lock()  # one callback at a time, in order
        self._slices: dict[str, SliceFacts] = {}
        self._local: Counter[str] = Counter()  # service key -> ready local endpoints over its slices
        self._dropped: set[tuple[str, str]] = set()
        # Changes not handed over yet: before both kinds' first list, or refused by a failing consumer.
        self._waiting: tuple[dict[str, ServiceInfo | None], dict[str, bool]] = ({}, {})
        self._delivered = False
        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        self._services = Reflector("services", core.list_service_for_all_namespaces, self._parse_service,
                                   self._services_changed, **timings)  # type: ignore[arg-type]
        self._endpoints = Reflector("endpointslices", discovery.list_endpoint_slice_for_all_namespaces,
                                    lambda obj: parse_slice(obj, node_name), self._slices_changed,
                                    **timings)  # type: ignore[arg-type]

    def run(self, stop: threading.Event) -> None:
        """Both reflectors until `stop` is set."""
        thread = threading.Thread(target=self._endpoints.run, args=(stop,), name="endpointslice-source",
                                  daemon=True)
        thread.start()
        try:
            self._services.run(stop)
        finally:
            thread.join()

    @property
    def stats(self) -> ServiceSourceStats:
        services, slices = self._services.stats, self._endpoints.stats
        with self._lock:
            local, dropped = sum(1 for n in self._local.values() if n > 0), len(self._dropped)
            delivered = self._delivered
        return ServiceSourceStats(
            services=services.objects, slices=slices.objects, services_with_local_endpoints=local,
            relists=services.relists + slices.relists, api_errors=services.api_errors + slices.api_errors,
            bad_objects=len(services.bad_objects) + len(slices.bad_objects), dropped_addresses=dropped,
            api_reachable=services.api_reachable and slices.api_reachable,
            synced=delivered)

    def reflector_stats(self) -> tuple[ReflectorStats, ReflectorStats]:
        return self._services.stats, self._endpoints.stats

    def _parse_service(self, obj: dict) -> ServiceInfo:
        parsed = parse_service(obj)
        for reason in parsed.dropped:
            key = (parsed.service.key, reason)
            if key not in self._dropped:  # under the reflector's lock; logged once per Service and address
                self._dropped.add(key)
                log.warning("service %s: address left out, it does not parse: %s", parsed.service.key, reason)
        return parsed.service

    def _services_changed(self, changes: Mapping[str, ServiceInfo | None]) -> None:
        with self._lock:
            for key, service in changes.items():
                if service is None:
                    self._dropped = {d for d in self._dropped if d[0] != key}
            self._emit(changes, {})

    def _emit(self, services: Mapping[str, ServiceInfo | None], local: Mapping[str, bool]) -> None:
        """Under the lock. Until both kinds are listed, changes wait and are handed over together: a Local
        Service is never judged without its endpoints, so the first announcements are the right ones. Changes
        the consumer failed to take are handed over again with the next ones (the reflector re-lists after a
        backoff, which brings that next call)."""
        self._waiting[0].update(services)
        self._waiting[1].update(local)
        if not self._delivered and not (self._services.stats.synced and self._endpoints.stats.synced):
            return
        services, local = self._waiting
        if not services and not local and self._delivered:
            return
        self._waiting = ({}, {})
        try:
            self._on_change(services, local)
        except Exception:
            self._waiting = ({**services, **self._waiting[0]}, {**local, **self._waiting[1]})
            raise
        self._delivered = True

    def _slices_changed(self, changes: Mapping[str, SliceFacts | None]) -> None:
        with self._lock:
            before: dict[str, bool] = {}
            for slice_key, facts in changes.items():
                old = self._slices.pop(slice_key, None)
                for item in (old, facts):
                    if item is not None:
                        before.setdefault(item.service_key, self._local[item.service_key] > 0)
                if old is not None:
                    self._local[old.service_key] -= old.local_ready
                if facts is not None:
                    self._slices[slice_key] = facts
                    self._local[facts.service_key] += facts.local_ready
            flipped = {}
            for key, was in before.items():
                now = self._local[key] > 0
                if now != was:
                    flipped[key] = now
                if self._local[key] == 0:
                    del self._local[key]
            self._emit({}, flipped)
