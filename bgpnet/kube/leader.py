"""Leader election through a `coordination.k8s.io/v1` Lease, following client-go's `leaderelection` package.

Every candidate (any agent) runs `LeaderElector.run`; at most one leads at a time:
- Acquire: read the Lease; create it when absent (holder = us). An existing Lease held by another candidate is
  taken over only when its holder left it empty (a clean release) or when `leaseDurationSeconds` elapsed since
  *we observed* its last change, measured on our own monotonic clock: the holder's renewTime is written from
  its wall clock, which may be skewed; client-go compares nothing but local observations for the same reason.
  A takeover increments `leaseTransitions`.
- Renew: the leader replaces the Lease every `retry_period` with the resourceVersion it read, so a write based
  on a stale read is a 409 Conflict: someone else changed the Lease and we have lost it.
- Step down before anybody can take over: `leading()` is true only until `renew_deadline` after the start of
  the last successful renewal, measured on the monotonic clock, whatever the elector thread is doing (a renewal
  stuck in a slow request included). Another candidate waits `lease_duration` after *observing* that renewal,
  which was after it started, so with renew_deadline < lease_duration the old leader stops acting before a new
  one can start; the difference (5 s by default) is the margin for a write already in flight.
- Release: on stop the leader clears `holderIdentity`, so a successor takes over at once instead of after the
  lease duration.

MicroTime (acquireTime, renewTime) goes on the wire as RFC 3339 with exactly six fractional digits and a zone:
bodies are plain JSON written here, because the client model's `isoformat()` drops the fraction when the
microsecond is 0 and the API server refuses that (400).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bgpnet.kube.watch_stream import TRANSIENT

log = logging.getLogger(__name__)

LEASE_NAME = "bgpnet-lb-allocator"
DEFAULT_NAMESPACE = "bgpnet-system"
# client-go's defaults for controllers (kube-controller-manager uses 15 s / 10 s / 2 s too).
LEASE_DURATION = 15
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0

def micro_time(moment: datetime) -> str:
    """metav1.MicroTime's wire format: `2006-01-02T15:04:05.000000Z`, always six fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: client.ApiClient,
        identity: str,
        namespace: str = DEFAULT_NAMESPACE,
        name: str = LEASE_NAME,
        *,
        lease_duration: int = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        release_on_stop: bool = True,
    ) -> None:
        """`release_on_stop=False` leaves the Lease to expire on stop, as a crash would (client-go's
        ReleaseOnCancel, off there by default; on here: an agent stops on purpose when its pod is replaced)."""
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs 0 < retry_period < renew_deadline < lease_duration")
        self._api = client.CoordinationV1Api(api)
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self._duration = lease_duration
        self._deadline = renew_deadline
        self._retry = retry_period
        self._clock = clock
        self._wall = wall_clock
        self._release_on_stop = release_on_stop
        self._lock = threading.Lock()
        self._renewed_at: float | None = None  # monotonic start of the last successful acquire/renew
        self._term = 0
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._observed_rv: str | None = None
        self.transitions = 0  # times this candidate became leader
        self.errors = 0

    # ---- what the leader's work checks -------------------------------------------------------------------

    def leading(self) -> bool:
        """True while this candidate may act as the leader (checked before every write)."""
        with self._lock:
            return self._renewed_at is not None and self._clock() < self._renewed_at + self._deadline

    def term(self) -> int:
        """Increases every time this candidate becomes leader: work of an earlier term must start over."""
        with self._lock:
            return self._term

    def holder(self) -> str | None:
        """The holder last observed in the Lease (for status output)."""
        with self._lock:
            return (self._observed_spec or {}).get("holderIdentity") or None

    # ---- the campaign -------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Campaign and renew until `stop` is set, then release the Lease if we hold it."""
        try:
            while not stop.is_set():
                was_leading = self._renewed_at is not None
                started = self._clock()
                if self._try_acquire_or_renew(started):
                    self._on_success(started, was_leading)
                elif was_leading:
                    self._on_failure()
                if self._renewed_at is not None:
                    wait = self._retry
                else:
                    # Candidates spread their attempts (client-go's JitterUntil) so they do not all poll at once.
                    wait = self._retry * (1 + 0.2 * random.random())
                stop.wait(max(0.0, started + wait - self._clock()))
        finally:
            self._release()

    def _on_success(self, started: float, was_leading: bool) -> None:
        with self._lock:
            if was_leading and self._clock() >= (self._renewed_at or 0) + self._deadline:
                # The renewal came back after our deadline: we already stopped acting; a new term starts.
                was_leading = False
            self._renewed_at = started
            if not was_leading:
                self._term += 1
                self.transitions += 1
        if not was_leading:
            log.info("became the leader of lease %s/%s (term %d)", self.namespace, self.name, self._term)

    def _on_failure(self) -> None:
        with self._lock:
            lost = self._renewed_at is not None and (
                self._clock() >= self._renewed_at + self._deadline
                or (self._observed_spec or {}).get("holderIdentity") != self.identity)
            if lost:
                self._renewed_at = None
        if lost:
            log.warning("lost the lease %s/%s: no longer the leader", self.namespace, self.name)

    def _try_acquire_or_renew(self, now: float) -> bool:
        """One attempt, as client-go's tryAcquireOrRenew; True when we hold the Lease afterwards."""
        timeout = self._deadline
        try:
            response = self._api.read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                       _request_timeout=timeout)
            lease = json.loads(response.data)
        except ApiException as exc:
            if exc.status != 404:
                return self._error("read", exc)
            return self._create(timeout)
        except TRANSIENT as exc:
            return self._error("read", exc)
        spec = lease.get("spec") or {}
        with self._lock:
            if spec != self._observed_spec:
                self._observed_spec, self._observed_at = spec, now
            self._observed_rv = (lease.get("metadata") or {}).get("resourceVersion")
            observed_at = self._observed_at
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds") or self._duration
        if holder and holder != self.identity and now < observed_at + duration:
            return False  # held by another candidate, and not yet expired by our own clock
        stamp = micro_time(self._wall())
        ours = holder == self.identity
        new_spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "acquireTime": spec.get("acquireTime") if ours and spec.get("acquireTime") else stamp,
            "renewTime": stamp,
            "leaseTransitions": (spec.get("leaseTransitions") or 0) + (0 if ours else 1),
        }
        body = {**lease, "spec": new_spec}  # metadata (with the read resourceVersion) as read
        try:
            response = self._api.replace_namespaced_lease(self.name, self.namespace, body, _preload_content=False,
                                                          _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:
                log.info("lease %s/%s changed under us (409): %s", self.namespace, self.name,
                         "lost it" if ours else "another candidate was faster")
                with self._lock:
                    self._observed_spec = None  # re-read; as a leader, this ends our term
                return False
            return self._error("update", exc)
        except TRANSIENT as exc:
            return self._error("update", exc)
        self._observe_written(json.loads(response.data), now)
        return True

    def _create(self, timeout: float) -> bool:
        stamp = micro_time(self._wall())
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self._duration,
                         "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
        try:
            response = self._api.create_namespaced_lease(self.namespace, body, _preload_content=False,
                                                         _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False  # another candidate created it first
            return self._error("create", exc)
        except TRANSIENT as exc:
            return self._error("create", exc)
        self._observe_written(json.loads(response.data), self._clock())
        return True

    def _observe_written(self, lease: dict[str, Any], now: float) -> None:
        with self._lock:
            self._observed_spec = lease.get("spec") or {}
            self._observed_at = now
            self._observed_rv = (lease.get("metadata") or {}).get("resourceVersion")

    def _error(self, what: str, exc: BaseException) -> bool:
        self.errors += 1
        detail = f"HTTP {exc.status} {exc.reason}" if isinstance(exc, ApiException) else f"{type(exc).__name__}"
        log.warning("lease %s/%s: %s failed: %s", self.namespace, self.name, what, detail)
        return False

    def _release(self) -> None:
        """Give the Lease up on a clean stop (client-go's ReleaseOnCancel): the successor need not wait."""
        with self._lock:
            held = self._renewed_at is not None
            self._renewed_at = None  # stop acting first, then release
            spec, rv = self._observed_spec, self._observed_rv
        ours = bool(spec) and (spec or {}).get("holderIdentity") == self.identity
        if not (self._release_on_stop and held and ours and rv is not None):
            return
        stamp = micro_time(self._wall())
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace, "resourceVersion": rv},
                "spec": {**spec, "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": stamp,
                         "renewTime": stamp}}
        try:
            self._api.replace_namespaced_lease(self.name, self.namespace, body, _preload_content=False,
                                               _request_timeout=self._deadline)
            log.info("released lease %s/%s", self.namespace, self.name)
        except TRANSIENT as exc:  # 409: someone else holds it already; an outage: it expires on its own
            self._error("release", exc)
