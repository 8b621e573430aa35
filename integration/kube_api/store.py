"""The stand-in's storage: objects, one resourceVersion counter, an event window and registered watchers.

It mirrors how kube-apiserver behaves on top of etcd and its watch cache, for every resource in the table:
- one cluster-wide, monotonically increasing resourceVersion (etcd's revision); every effective write bumps
  it, a write that changes nothing does not (etcd's guaranteed-update skips identical bytes);
- a bounded window of past events; a watch from a resourceVersion inside the window replays what followed it,
  one from before the window gets `410 Expired "too old resource version: R (oldest-1)"`, and `compact()`
  empties the window the way an etcd compaction plus watch-cache eviction does;
- writes run the kind's strategy (decode/defaults, prepare, allocate, validate: `strategy.py`) under the store
  lock, then the generic registry's rules: system metadata (uid, creationTimestamp, generation, deletion
  fields) cannot be written by clients, a PUT with a stale resourceVersion is a 409 Conflict, a kind without
  unconditional updates (Lease) needs one, and an object with finalizers is only marked deleted
  (deletionTimestamp) until an update empties its finalizers.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import errors
from .fielderrors import GoHex, forbidden, invalid, invalid_value, required
from .resources import RESOURCES, Resource
from .selectors import Predicate
from .strategy import Strategy
from .watchers import Event, Watcher

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects
Object = dict[str, Any]

# Metadata only the server writes: an update keeps the stored values (rest.BeforeUpdate, FillObjectMetaSystemFields).
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp",
                  "deletionGracePeriodSeconds")
# Where kube-apiserver keeps each kind in etcd: storage errors name the key.
_ETCD_PREFIX = {"nodes": "minions", "services": "services/specs"}


@dataclass
class _Entry:
    obj: Object
    item_json: bytes  # list item: kind/apiVersion are only on the list itself, as the real server encodes


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _item_json(obj: Object) -> bytes:
    return _dumps({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Store:
    def __init__(self, history_limit: int = 10_000, strategies: Mapping[str, Strategy] | None = None) -> None:
        self.history_limit = history_limit
        self.rv = 1
        self.floor = 1  # watches from a resourceVersion below this get 410
        self.cond = threading.Condition()
        self._strategies = {r.key: Strategy(r) for r in RESOURCES} | dict(strategies or {})
        self._objects: dict[str, dict[Key, _Entry]] = {r.key: {} for r in RESOURCES}
        self._history: deque[Event] = deque()
        self._watchers: set[Watcher] = set()

    def strategy(self, resource: Resource) -> Strategy:
        return self._strategies[resource.key]

    def objects(self, resource: Resource) -> list[Object]:
        """Every stored object of a resource (the strategies' Context: allocation reads what is in use)."""
        with self.cond:
            return [entry.obj for entry in self._objects[resource.key].values()]

    # ---- reads -------------------------------------------------------------------------------------------

    def get(self, resource: Resource, key: Key) -> Object:
        with self.cond:
            entry = self._objects[resource.key].get(key)
            if entry is None:
                raise errors.not_found(resource.plural, key[1], resource.group)
            return entry.obj

    def list(
        self,
        resource: Resource,
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
            entries = self._entries_at(resource.key, snapshot_rv)
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

    def create(self, resource: Resource, obj: Object, *, dry_run: bool = False) -> Object:
        meta = dict(obj.get("metadata") or {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise invalid(resource.group, resource.kind, "",
                          [required("metadata.name", "name or generateName is required")])
        if meta.get("resourceVersion"):
            raise errors.ApiError(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be created",
                {"causes": [{"message": "resourceVersion should not be set on objects to be created"}]},
            )
        if not resource.namespaced:
            meta.pop("namespace", None)
        for server_only in ("deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            meta.pop(server_only, None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = now_rfc3339()
        new = {"kind": resource.kind, "apiVersion": resource.api_version, **obj, "metadata": meta}
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        strategy = self.strategy(resource)
        with self.cond:
            new = strategy.normalize(strategy.create(strategy.decode(new), self))
            key = _key(new)
            if key in self._objects[resource.key]:
                raise errors.already_exists(resource.plural, name, resource.group)
            if dry_run:
                return new
            return self._commit(resource.key, key, new, None)

    def update(
        self, resource: Resource, key: Key, obj: Object, *, subresource: str | None = "",
        precondition: bool = True, dry_run: bool = False,
    ) -> Object:
        """PUT: optimistic concurrency on metadata.resourceVersion (required for kinds without unconditional
        updates). `subresource` None is the stand-in's own raw write, as if straight into etcd."""
        strategy = self.strategy(resource)
        with self.cond:
            old = self.get(resource, key)
            new = strategy.decode(obj) if subresource is not None else obj
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if precondition and not sent_rv and not strategy.allow_unconditional_update:
                raise invalid(resource.group, resource.plural, key[1], [invalid_value(
                    "metadata.resourceVersion", GoHex(0), "must be specified for an update")])
            if precondition and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource.plural, key[1], resource.group)
            return self._write_over(resource, key, old, new, subresource, dry_run)

    def mutate(self, resource: Resource, key: Key, change: Callable[[Object], Object], *,
               subresource: str | None = "", dry_run: bool = False) -> Object:
        """PATCH: `change(old_object) -> new_object` applied atomically under the store lock."""
        strategy = self.strategy(resource)
        with self.cond:
            old = self.get(resource, key)
            new = change(json.loads(json.dumps(old)))
            if subresource is not None:
                new = strategy.decode(new)
            sent_rv = (new.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(resource.plural, key[1], resource.group)
            return self._write_over(resource, key, old, new, subresource, dry_run)

    def delete(self, resource: Resource, key: Key, *, preconditions: Mapping[str, Any] | None = None,
               dry_run: bool = False) -> tuple[Object, bool]:
        """(object, gone): an object with finalizers is marked deleted and stays until they are removed."""
        with self.cond:
            old = self.get(resource, key)
            self._check_preconditions(resource, key, old, preconditions or {})
            meta = old["metadata"]
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return old, False
                marked = {**meta, "deletionTimestamp": now_rfc3339(), "deletionGracePeriodSeconds": 0}
                if meta.get("generation"):
                    marked["generation"] = meta["generation"] + 1  # markAsDeleting
                new = {**old, "metadata": marked}
                return (new if dry_run else self._commit(resource.key, key, new, old)), False
            if not dry_run:
                self._commit(resource.key, key, None, old)
            return old, True

    def delete_collection(self, resource: Resource, namespace: str | None, predicate: Predicate, *,
                          dry_run: bool = False) -> list[Object]:
        """DELETE on a collection: the matching objects as listed before, each deleted as by `delete`."""
        with self.cond:
            items = [e.obj for k, e in sorted(self._objects[resource.key].items())
                     if (namespace is None or k[0] == namespace) and predicate(e.obj)]
            for obj in items:
                self.delete(resource, _key(obj), dry_run=dry_run)
            return items

    def _check_preconditions(self, resource: Resource, key: Key, obj: Object, wanted: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        problem = None
        if wanted.get("uid") is not None and wanted["uid"] != meta.get("uid"):
            problem = f"UID in precondition: {wanted['uid']}, UID in object meta: {meta.get('uid')}"
        elif wanted.get("resourceVersion") is not None and wanted["resourceVersion"] != meta["resourceVersion"]:
            problem = (f"ResourceVersion in precondition: {wanted['resourceVersion']}, ResourceVersion in object "
                       f"meta: {meta['resourceVersion']}")
        if problem is not None:
            etcd_key = "/registry/" + "/".join(
                [_ETCD_PREFIX.get(resource.plural, resource.plural), *([key[0]] if key[0] else []), key[1]])
            raise errors.conflict(resource.plural, key[1], resource.group,
                                  f"StorageError: invalid object, Code: 4, Key: {etcd_key}, ResourceVersion: 0, "
                                  f"AdditionalErrorMsg: Precondition failed: {problem}")

    def _write_over(self, resource: Resource, key: Key, old: Object, new: Object, subresource: str | None,
                    dry_run: bool) -> Object:
        name = (new.get("metadata") or {}).get("name", key[1])
        if name != key[1]:
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({key[1]})"
            )
        meta = dict(new.get("metadata") or {})
        for system_field in _SYSTEM_FIELDS:
            if system_field in old["metadata"]:
                meta[system_field] = old["metadata"][system_field]
            else:
                meta.pop(system_field, None)
        new = {"kind": resource.kind, "apiVersion": resource.api_version, **new, "metadata": meta}
        new["kind"], new["apiVersion"] = resource.kind, resource.api_version
        strategy = self.strategy(resource)
        if subresource is not None:
            self._check_finalizers(resource, old, meta)
            new = strategy.update(new, old, subresource, self)
        new = strategy.normalize(new)
        if new == old:
            return old  # nothing changed: no new revision, no event
        if dry_run:
            return new
        if meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The last finalizer is gone: the deletion completes (the DELETED event carries the stored state).
            gone = self._commit(resource.key, key, None, old)
            return {**new, "metadata": {**new["metadata"], "resourceVersion": gone["metadata"]["resourceVersion"]}}
        return self._commit(resource.key, key, new, old)

    def _check_finalizers(self, resource: Resource, old: Object, meta: Mapping[str, Any]) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        extra = sorted(set(meta.get("finalizers") or []) - set(old["metadata"].get("finalizers") or []))
        if extra:
            listed = "[]string{" + ", ".join(json.dumps(f) for f in extra) + "}"
            raise invalid(resource.group, resource.kind, old["metadata"]["name"], [forbidden(
                "metadata.finalizers",
                f"no new finalizers can be added if the object is being deleted, found new finalizers {listed}")])

    def _commit(self, resource: str, key: Key, new: Object | None, old: Object | None) -> Object:
        self.rv += 1
        if new is None:
            assert old is not None
            stamped = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
            del self._objects[resource][key]
            event = Event(self.rv, "DELETED", resource, stamped, old)
        else:
            stamped = {**new, "metadata": {**new["metadata"], "resourceVersion": str(self.rv)}}
            self._objects[resource][key] = _Entry(stamped, _item_json(stamped))
            event = Event(self.rv, "MODIFIED" if old is not None else "ADDED", resource, stamped, old)
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
        self, resource: Resource, namespace: str | None, predicate: Predicate, resource_version: str
    ) -> Watcher:
        """Register a watcher primed with what it must replay; raises ApiError 410/504 as the watch cache does."""
        watcher = Watcher(self, resource.key, namespace, predicate)
        with self.cond:
            if resource_version in ("", "0"):
                # Unset/0: "start at most recent", beginning with synthetic ADDED events for the current state.
                for _, entry in sorted(self._objects[resource.key].items()):
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
                    if event.rv > wanted and event.resource == resource.key:
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


def _key(obj: Object) -> Key:
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
