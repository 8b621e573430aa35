"""Writes the agent's Events on its own Node (what `kubectl describe node` and `kubectl get events` show).

Decisions — what to record, deduplication, the spam filter — are `bgpnet.node_events`'; this module only
talks to the API, from its own thread, so a slow or absent API server never delays the agent's loop: `emit`
never blocks, and when the small queue is full the event is dropped and counted (the same happens in
client-go's broadcaster). Node events live in the `default` namespace with the Node's name as its UID, as
kubelet records them, so `kubectl describe node` lists them with kubelet's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bgpnet.node_events import EventBook, NodeEvent, Write

log = logging.getLogger("bgpnet.kube.events")

NAMESPACE = "default"
COMPONENT = "bgpnet"
QUEUE_SIZE = 100


class NodeEventWriter:
    """Creates or updates one Event per `Write` (the API seam; synchronous)."""

    def __init__(self, api: client.ApiClient, node: str) -> None:
        self._api = client.CoreV1Api(api)
        self._node = node

    def create(self, write: Write) -> str:
        name = f"{self._node}.{time.time_ns():x}"  # client-go's naming: involved object's name + a hex clock
        self._api.create_namespaced_event(NAMESPACE, client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, namespace=NAMESPACE),
            involved_object=client.V1ObjectReference(api_version="v1", kind="Node", name=self._node,
                                                     uid=self._node),
            reason=write.event.reason, message=write.event.message, type=write.event.type, count=write.count,
            first_timestamp=_time(write.first_seen), last_timestamp=_time(write.last_seen),
            source=client.V1EventSource(component=COMPONENT, host=self._node),
            reporting_component=COMPONENT, reporting_instance=self._node))
        return name

    def update(self, write: Write) -> None:
        assert write.name is not None
        self._api.patch_namespaced_event(write.name, NAMESPACE, {
            "count": write.count, "lastTimestamp": _time(write.last_seen).strftime("%Y-%m-%dT%H:%M:%SZ")})


class NodeEventRecorder:
    """`emit` from any thread; a daemon thread writes. `dropped` counts what the spam filter or a full queue
    dropped, `failed` what the API refused."""

    def __init__(self, writer: NodeEventWriter, clock: Callable[[], float] = time.time) -> None:
        self._writer = writer
        self._clock = clock
        self._book = EventBook(clock())
        self._queue: queue.Queue[NodeEvent | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self.queue_full = 0
        self.failed = 0
        self.written = 0

    @property
    def dropped(self) -> int:
        return self._book.dropped + self.queue_full

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="node-events", daemon=True)
        self._thread.start()

    def emit(self, event: NodeEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.queue_full += 1

    def stop(self, timeout: float = 2.0) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> None:
        """Write everything queued now, on the caller's thread (tests and shutdown)."""
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return
            if event is not None:
                self._write(event)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self._write(event)

    def _write(self, event: NodeEvent) -> None:
        write = self._book.record(event, self._clock())
        if write is None:
            return
        try:
            if write.name is None:
                self._book.created(write, self._writer.create(write))
            else:
                self._writer.update(write)
            self.written += 1
        except ApiException as exc:
            # 404 on an update: the Event expired (the API server keeps them an hour); next time creates one.
            self._book.forget(write)
            self.failed += 1
            log.warning("could not record event reason=%s status=%s", event.reason, exc.status)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # the API server is away
            self._book.forget(write)
            self.failed += 1
            log.warning("could not record event reason=%s error=%s", event.reason, exc)


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)
