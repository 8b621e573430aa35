"""The one table of resources the stand-in serves: what kube-apiserver's discovery says about each of them.

Everything else is generic over this table — URL routing, list/watch, the Status errors' qualified names
(`leases.coordination.k8s.io "x" not found`), discovery documents — and what differs between kinds in
behaviour (defaults, validation, allocation) sits in one strategy per kind (`strategy.py`, `services.py`, ...),
as the apiserver's registry does (pkg/registry/<group>/<resource>/strategy.go).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .patch import COMMON_MERGE_LISTS, NODE_MERGE_LISTS, SERVICE_MERGE_LISTS

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
# The service registry has no DeleteCollection (kubectl api-resources lists none for services).
NO_DELETECOLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Resource:
    group: str  # "" is the core ("legacy") group under /api
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    return_deleted_object: bool = False  # DELETE answers with the object, not a Status (the registry's choice)
    # Field selectors beyond metadata.name / metadata.namespace (the resource's GetAttrs / field label conversion).
    field_labels: tuple[str, ...] = ()
    # Strategic-merge-patch list keys: (path) -> merge key ("" for a set of primitives).
    merge_lists: Mapping[tuple[str, ...], str] = field(default_factory=lambda: COMMON_MERGE_LISTS)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """schema.GroupResource's String(): how errors name the resource ("nodes", "leases.coordination.k8s.io")."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                 "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                 "reason", "reportingComponent", "source", "type")

NODES = Resource("", "v1", "nodes", "node", "Node", namespaced=False, subresources=("status",),
                 short_names=("no",), merge_lists=NODE_MERGE_LISTS)
SECRETS = Resource("", "v1", "secrets", "secret", "Secret", namespaced=True)
# Field labels of Events are what `kubectl describe node` uses to find a Node's events.
EVENTS = Resource("", "v1", "events", "event", "Event", namespaced=True, short_names=("ev",),
                  field_labels=_EVENT_FIELDS)
SERVICES = Resource("", "v1", "services", "service", "Service", namespaced=True, subresources=("status",),
                    short_names=("svc",), categories=("all",), verbs=NO_DELETECOLLECTION,
                    return_deleted_object=True, merge_lists=SERVICE_MERGE_LISTS)
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice",
                           namespaced=True)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", namespaced=True)

RESOURCES: tuple[Resource, ...] = (NODES, SECRETS, EVENTS, SERVICES, ENDPOINT_SLICES, LEASES)
BY_KEY: Mapping[str, Resource] = MappingProxyType({r.key: r for r in RESOURCES})
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def groups() -> dict[str, list[str]]:
    """Named API groups (not the core group) and their versions, in the order discovery lists them."""
    found: dict[str, list[str]] = {}
    for resource in RESOURCES:
        if resource.group and resource.version not in found.setdefault(resource.group, []):
            found[resource.group].append(resource.version)
    return found
