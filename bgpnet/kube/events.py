"""Writes the agent's Events: on its own Node (what `kubectl describe node` and `kubectl get events` show), and
on the Services the LoadBalancer allocator serves (`kubectl describe service`).

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
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bgpnet.node_events import EventBook, NodeEvent, Write

log = logging.getLogger("bgpnet.kube.events")

NAMESPACE = "default"
COMPONENT = "bgpnet"
QUEUE_SIZE = 100
MAX_OBJECTS = 10_000


@dataclass(frozen=True)
class InvolvedObject:
    """The object an Event is about. Events live in its namespace; those about a cluster-scoped object (a Node)
    in `default`, as kubelet records them. `kubectl describe` finds them by kind, name, namespace and uid."""

    kind: str
    name: str
    namespace: str = ""  # "" for a cluster-scoped object
    uid: str = ""
    api_version: str = "v1"

    @property
    def event_namespace(self) -> str:
        return self.namespace or NAMESPACE


class EventWriter:
    """Creates or updates one Event per `Write` about any object (the API seam; synchronous)."""

    def __init__(self, api: client.ApiClient, host: str) -> None:
        self._api = client.CoreV1Api(api)
        self._host = host

    def create(self, involved: InvolvedObject, write: Write) -> str:
        name = f"{involved.name}.{time.time_ns():x}"  # client-go's naming: the object's name + a hex clock
        namespace = involved.event_namespace
        self._api.create_namespaced_event(namespace, client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            involved_object=client.V1ObjectReference(api_version=involved.api_version, kind=involved.kind,
                                                     name=involved.name, namespace=involved.namespace or None,
                                                     uid=involved.uid or None),
            reason=write.event.reason, message=write.event.message, type=write.event.type, count=write.count,
            first_timestamp=_time(write.first_seen), last_timestamp=_time(write.last_seen),
            source=client.V1EventSource(component=COMPONENT, host=self._host),
            reporting_component=COMPONENT, reporting_instance=self._host))
        return name

    def update(self, involved: InvolvedObject, write: Write) -> None:
        assert write.name is not None
        self._api.patch_namespaced_event(write.name, involved.event_namespace, {
            "count": write.count, "lastTimestamp": _time(write.last_seen).strftime("%Y-%m-%dT%H:%M:%SZ")})


class NodeEventWriter(EventWriter):
    """An `EventWriter` that knows its Node: Events the agent records about the node it runs on."""

    def __init__(self, api: client.ApiClient, node: str) -> None:
        super().__init__(api, host=node)
        self.node = InvolvedObject("Node", node, uid=node)  # kubelet uses the Node's name as its event UID


class EventRecorder:
    """`emit_about` from any thread; a daemon thread writes. Deduplication and the spam filter are kept per
    involved object (client-go's EventCorrelator keys both by object), for at most `max_objects` objects (the
    least recently used are forgotten). `dropped` counts what the spam filter or a full queue dropped, `failed`
    what the API refused."""

    def __init__(self, writer: EventWriter, clock: Callable[[], float] = time.time, *,
                 queue_size: int = QUEUE_SIZE, max_objects: int = MAX_OBJECTS) -> None:
        self._writer = writer
        self._clock = clock
        self._books: OrderedDict[InvolvedObject, EventBook] = OrderedDict()
        self._max_objects = max_objects
        self._forgotten_drops = 0
        self._queue: queue.Queue[tuple[InvolvedObject, NodeEvent] | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self.queue_full = 0
        self.failed = 0
        self.written = 0

    @property
    def dropped(self) -> int:
        return sum(b.dropped for b in list(self._books.values())) + self._forgotten_drops + self.queue_full

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def emit_about(self, involved: InvolvedObject, event: NodeEvent) -> None:
        try:
            self._queue.put_nowait((involved, event))
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
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._write(*item)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._write(*item)

    def _book(self, involved: InvolvedObject) -> EventBook:
        book = self._books.get(involved)
        if book is None:
            book = self._books[involved] = EventBook(self._clock())
            if len(self._books) > self._max_objects:
                _, oldest = self._books.popitem(last=False)
                self._forgotten_drops += oldest.dropped
        self._books.move_to_end(involved)
        return book

    def _write(self, involved: InvolvedObject, event: NodeEvent) -> None:
        book = self._book(involved)
        write = book.record(event, self._clock())
        if write is None:
            return
        try:
            if write.name is None:
                book.created(write, self._writer.create(involved, write))
            else:
                self._writer.update(involved, write)
            self.written += 1
        except ApiException as exc:
            # 404 on an update: the Event expired (the API server keeps them an hour); next time creates one.
            book.forget(write)
            self.failed += 1
            log.warning("could not record event reason=%s status=%s", event.reason, exc.status)
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # the API server is away
            book.forget(write)
            self.failed += 1
            log.warning("could not record event reason=%s error=%s", event.reason, exc)


class NodeEventRecorder(EventRecorder):
    """The agent's recorder of Events about its own Node: `emit(event)`."""

    def __init__(self, writer: NodeEventWriter, clock: Callable[[], float] = time.time) -> None:
        super().__init__(writer, clock)
        self._node = writer.node

    def emit(self, event: NodeEvent) -> None:
        self.emit_about(self._node, event)


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)
