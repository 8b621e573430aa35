"""Discovery documents, built from the resource table: /version, /api, /api/v1, /apis, /apis/{g}, /apis/{g}/{v}.

The shapes are the apiserver's: /api/v1's APIResourceList carries no apiVersion while a group's does, every
resource lists its subresources as "<plural>/<sub>" entries with an empty singularName and verbs
get/patch/update, and /apis lists every group with its preferred version. Aggregated discovery (the
`application/json;g=apidiscovery.k8s.io;v=v2` Accept type) is not offered: clients fall back to these.
"""

from __future__ import annotations

from typing import Any

from .resources import RESOURCES, SUBRESOURCE_VERBS, groups

GIT_VERSION = "v1.34.0"


def _resources(group: str, version: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        listed.append(entry)
        listed.extend({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                       "kind": r.kind, "verbs": list(SUBRESOURCE_VERBS)} for sub in r.subresources)
    return listed


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def document(path: str) -> dict[str, Any] | None:
    """The discovery document at `path`, None when it is not a discovery path."""
    if path == "/version":
        return {"major": "1", "minor": "34", "gitVersion": GIT_VERSION, "gitCommit": "standin",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": _resources("", "v1")}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_group(name, versions) for name, versions in groups().items()]}
    parts = path.strip("/").split("/")
    if parts[0] != "apis" or len(parts) not in (2, 3) or parts[1] not in groups():
        return None
    if len(parts) == 2:
        return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], groups()[parts[1]])}
    if parts[2] not in groups()[parts[1]]:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{parts[1]}/{parts[2]}",
            "resources": _resources(parts[1], parts[2])}

