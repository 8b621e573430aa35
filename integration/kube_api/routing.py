"""kube-apiserver's URL layout, generic over the resource table.

    /api/v1[/watch][/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]
    /apis/{group}/{version}[/watch][/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]

A namespaced resource is listed and watched across all namespaces without the namespaces/{ns} part; one of
its objects is only reachable with it. A cluster-scoped resource has no namespaced paths. Anything else is the
apiserver's 404 "the server could not find the requested resource".
"""

from __future__ import annotations

from dataclasses import dataclass

from .resources import Resource, lookup


@dataclass(frozen=True)
class Route:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str  # "" for the main resource
    watch_path: bool  # the deprecated /watch/ prefix

    @property
    def template(self) -> str:
        """Request-count key: "/api/v1/namespaces/{namespace}/services/{name}/status" and the like."""
        path = self.resource.prefix
        if self.namespace is not None:
            path += "/namespaces/{namespace}"
        path += f"/{self.resource.plural}"
        if self.name is not None:
            path += "/{name}"
        if self.subresource:
            path += f"/{self.subresource}"
        return path


def parse(path: str) -> Route | None:
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch = rest[:1] == ["watch"]
    if watch:
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3 or not all(rest):
        return None
    resource = lookup(group, version, rest[0])
    if resource is None or (namespace is not None and not resource.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else ""
    if name is not None and resource.namespaced and namespace is None:
        return None
    if subresource and subresource not in resource.subresources:
        return None
    if watch and name is not None:
        return None  # watching one object by path is not served; use a fieldSelector metadata.name=...
    return Route(resource, namespace, name, subresource, watch)
