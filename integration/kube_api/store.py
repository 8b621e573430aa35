"""The stand-in's storage: objects, one resourceVersion counter, an event window and registered watchers.

It mirrors how kube-apiserver behaves on top of etcd and its watch cache:
- one cluster-wide, monotonically increasing resourceVersion (etcd's revision); every effective write bumps
  it, a write that changes nothing does not (etcd's guaranteed-update skips identical bytes);
- a bounded window of past events; a watch from a resourceVersion inside the window replays what followed it,
  one from before the window gets `410 Expired "too old resource version: R (oldest-1)"`, and `compact()`
  empties the window the way an etcd compaction plus watch-cache eviction does;
- each watcher gets its own queue filled under the store lock, like the watch cache's per-watcher channel, so
  a compaction never disturbs a watch that is already running; with a label selector an object moving out of
  the selection is delivered as DELETED and one moving in as ADDED (cacheWatcher.convertToWatchEvent);
- a DELETED event carries the last state of the object stamped with the deletion's resourceVersion.
Objects are stored as immutable JSON-ready dicts with their serialized list item cached, so a 5,000-node list
is one join of cached bytes.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .selectors import Predicate

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    namespaced: bool


NODES = Resource("nodes", "Node", namespaced=False)
SECRETS = Resource("secrets", "Secret", namespaced=True)
EVENTS = Resource("events", "Event", namespaced=True)
RESOURCES = {r.plural: r for r in (NODES, SECRETS, EVENTS)}


@dataclass
class _Entry:
    obj: dict[str, Any]
    item_json: bytes  # list item: kind/apiVersion are only on the list itself, as the real server encodes


@dataclass(frozen=True)
class _Event:
    rv: int
    type: str
    resource: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _item_json(obj: dict[str, Any]) -> bytes:
    return _dumps({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def normalize_node(obj: dict[str, Any]) -> dict[str, Any]:
    """The v1<->internal conversion: spec.podCIDRs is the truth and spec.podCIDR always mirrors its head."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    spec = dict(spec)
    if spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    if spec.get("podCIDRs"):
        spec["podCIDR"] = spec["podCIDRs"][0]
    return {**obj, "spec": spec}


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

    def offer(self, event: _Event) -> None:
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


@dataclass
class Store:
    history_limit: int = 10_000
    rv: int = 1
    floor: int = 1  # watches from a resourceVersion below this get 410
    cond: threading.Condition = field(default_factory=threading.Condition)
    _objects: dict[str, dict[Key, _Entry]] = field(default_factory=lambda: {r: {} for r in RESOURCES})
    _history: deque[_Event] = field(default_factory=deque)
    _watchers: set[Watcher] = field(default_factory=set)

    # ---- reads -------------------------------------------------------------------------------------------

    def get(self, resource: str, key: Key) -> dict[str, Any]:
        with self.cond:
            entry = self._objects[resource].get(key)
            if entry is None:
                raise errors.not_found(resource, key[1])
            return entry.obj

    def list(
        self,
        resource: str,
        namespace: str | None,
        predicate: Predicate,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[bytes], int, str | None, int | None]:
        """(serialized items, list resourceVersion, continue token, remainingItemCount)."""
        with self.cond:
            start = ""
            snapshot_rv = self.rv
            if continue_token:
                snapshot_rv, start = _decode_continue(continue_token)
                if snapshot_rv < self.floor:
                    raise errors.ApiError(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter, or use the continue token "
                        "in this response to retrieve the remainder of the results. Continuing with the "
                        "provided token results in an inconsistent list - objects that were created, "
                        "modified, or deleted between the time the first chunk was returned and now may "
                        "show up in the list.",
                    )
            entries = self._entries_at(resource, snapshot_rv)
            keys = sorted(k for k in entries if namespace is None or k[0] == namespace)
            selected = [k for k in keys if _key_str(k) > start or not start]
            selected = [k for k in selected if predicate(entries[k].obj)]
            if limit and len(selected) > limit:
                page = selected[:limit]
                token = _encode_continue(snapshot_rv, _key_str(page[-1]))
                return [entries[k].item_json for k in page], snapshot_rv, token, len(selected) - limit
            return [entries[k].item_json for k in selected], snapshot_rv, None, None

    def _entries_at(self, resource: str, rv: int) -> dict[Key, _Entry]:
        """Objects as they were at `rv`: the current ones with later events undone (paged lists are snapshots)."""
        current = self._objects[resource]
        if rv >= self.rv:
            return current
        entries = dict(current)
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.resource != resource:
                continue
            key = _key(event.obj)
            if event.prev is None:
                entries.pop(key, None)
            else:
                entries[key] = _Entry(event.prev, _item_json(event.prev))
        return entries

    # ---- writes ------------------------------------------------------------------------------------------

    def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        res = RESOURCES[resource]
        meta = dict(obj.get("metadata") or {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise errors.invalid(res.kind, resource, "", "metadata.name: Required value: name or generateName "
                                 "is required")
        if meta.get("resourceVersion"):
            raise errors.ApiError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be created",
                {"causes": [{"message": "resourceVersion should not be set on objects to be created"}]},
            )
        if not res.namespaced:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = now_rfc3339()
        new = {**obj, "kind": res.kind, "apiVersion": "v1", "metadata": meta}
        if resource == "nodes":
            new = normalize_node(new)
        with self.cond:
            key = _key(new)
            if key in self._objects[resource]:
                raise errors.already_exists(resource, name)
            return self._commit(resource, key, new, None)

    def update(
        self, resource: str, key: Key, obj: dict[str, Any], *, subresource: str | None = "",
        precondition: bool = True,
    ) -> dict[str, Any]:
        """PUT: optimistic concurrency on metadata.resourceVersion when the body carries one."""
        with self.cond:
            old = self.get(resource, key)
            sent_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if precondition and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, key[1])
            return self._write_over(resource, key, old, obj, subresource)

    def mutate(self, resource: str, key: Key, change: Any, *, subresource: str | None = "") -> dict[str, Any]:
        """PATCH: `change(old_object) -> new_object` applied atomically under the store lock."""
        with self.cond:
            old = self.get(resource, key)
            new = change(json.loads(json.dumps(old)))
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource, key[1])
            return self._write_over(resource, key, old, new, subresource)

    def delete(self, resource: str, key: Key) -> dict[str, Any]:
        with self.cond:
            old = self.get(resource, key)
            return self._commit(resource, key, None, old)

    def _write_over(
        self, resource: str, key: Key, old: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        res = RESOURCES[resource]
        name = (new.get("metadata") or {}).get("name", key[1])
        if name != key[1]:
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({key[1]})"
            )
        new = {**new, "kind": res.kind, "apiVersion": "v1"}
        if resource == "nodes" and subresource is not None:
            # nodeStrategy / nodeStatusStrategy: the main resource cannot change status, /status only status.
            # (subresource None is the stand-in's own raw write, as if straight into etcd.)
            if subresource == "status":
                new = {**new, "spec": old.get("spec", {})}
            else:
                new = {**new, "status": old.get("status", {})}
                if "status" not in old:
                    new.pop("status")
        if resource == "nodes":
            new = normalize_node(new)
        meta = dict(new.get("metadata") or {})
        for system_field in ("uid", "creationTimestamp", "resourceVersion"):
            if system_field in old["metadata"]:
                meta[system_field] = old["metadata"][system_field]
            else:
                meta.pop(system_field, None)
        new["metadata"] = meta
        if new == old:
            return old  # nothing changed: no new revision, no event
        return self._commit(resource, key, new, old)

    def _commit(
        self, resource: str, key: Key, new: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        self.rv += 1
        if new is None:
            assert old is not None
            stamped = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
            del self._objects[resource][key]
            event = _Event(self.rv, "DELETED", resource, stamped, old)
        else:
            stamped = {**new, "metadata": {**new["metadata"], "resourceVersion": str(self.rv)}}
            self._objects[resource][key] = _Entry(stamped, _item_json(stamped))
            event = _Event(self.rv, "MODIFIED" if old is not None else "ADDED", resource, stamped, old)
        self._history.append(event)
        while len(self._history) > self.history_limit:
            self.floor = self._history.popleft().rv
        for watcher in self._watchers:
            if watcher.resource == resource:
                watcher.offer(event)
        self.cond.notify_all()
        return stamped

    # ---- watch -------------------------------------------------------------------------------------------

    def watch(
        self, resource: str, namespace: str | None, predicate: Predicate, resource_version: str
    ) -> Watcher:
        """Register a watcher primed with what it must replay; raises ApiError 410/504 as the watch cache does."""
        watcher = Watcher(self, resource, namespace, predicate)
        with self.cond:
            if resource_version in ("", "0"):
                # Unset/0: "start at most recent", beginning with synthetic ADDED events for the current state.
                for _, entry in sorted(self._objects[resource].items()):
                    if watcher.wants(entry.obj):
                        watcher.pending.append(("ADDED", entry.obj))
            else:
                try:
                    wanted = int(resource_version)
                except ValueError:
                    raise errors.bad_request(f'invalid resource version "{resource_version}"') from None
                deadline = time.monotonic() + 3.0
                while wanted > self.rv and time.monotonic() < deadline:
                    # Like the watch cache, wait a moment for a resourceVersion it has not caught up with.
                    self.cond.wait(deadline - time.monotonic())
                if wanted > self.rv:
                    raise errors.too_large_resource_version(wanted, self.rv)
                if wanted < self.floor:
                    raise errors.expired(f"too old resource version: {wanted} ({self.floor})")
                for event in self._history:
                    if event.rv > wanted and event.resource == resource:
                        watcher.offer(event)
            self._watchers.add(watcher)
        return watcher

    def forget(self, watcher: Watcher) -> None:
        with self.cond:
            watcher.closed = True
            self._watchers.discard(watcher)
            self.cond.notify_all()

    def close_all_watchers(self) -> None:
        with self.cond:
            for watcher in list(self._watchers):
                watcher.closed = True
            self._watchers.clear()
            self.cond.notify_all()

    def compact(self) -> int:
        """Forget all history: from now on only a watch from the current resourceVersion (or a list) works."""
        with self.cond:
            self._history.clear()
            self.floor = self.rv
            return self.rv


def _key(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _key_str(key: Key) -> str:
    return f"{key[0]}/{key[1]}"


def _encode_continue(rv: int, start: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"]).rstrip("\x00")
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None
