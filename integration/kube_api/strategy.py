"""What a write does beyond storing the body: the apiserver's per-kind strategy (pkg/registry/.../strategy.go).

The store calls, under its lock, in the apiserver's order:
- `decode(obj)` on every body and patch result: the wire format's own checks (400 when the JSON cannot be the
  kind, e.g. a Lease time without microseconds) and the v1 defaults (SetDefaults_*);
- `create(obj, ctx)`: PrepareForCreate, allocation (a Service's ClusterIP) and Validate, raising 422;
- `update(new, old, subresource, ctx)`: PrepareForUpdate and ValidateUpdate for the main resource ("") or a
  subresource ("status");
- `normalize(obj)`: what the internal<->v1 conversion does on every write, the stand-in's own raw writes
  (test set-up "as if written to etcd") included.

The default strategy is kube's generic one: no defaults, every body valid, and for a kind with a status
subresource the usual split — a write to the main resource keeps the old status, a write to /status keeps the
old spec (metadata may change through either).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .resources import Resource

Object = dict[str, Any]


class Context(Protocol):
    """What a strategy may read while the store holds its lock (allocation needs the objects in use)."""

    def objects(self, resource: Resource) -> Iterable[Object]: ...


class Strategy:
    allow_unconditional_update = True  # a PUT without metadata.resourceVersion overwrites (most kinds)

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    def decode(self, obj: Object) -> Object:
        return obj

    def normalize(self, obj: Object) -> Object:
        return obj

    def create(self, obj: Object, ctx: Context) -> Object:
        return obj

    def update(self, new: Object, old: Object, subresource: str, ctx: Context) -> Object:
        if "status" not in self.resource.subresources:
            return new
        return split_status(new, old, subresource)


def split_status(new: Object, old: Object, subresource: str) -> Object:
    """The main resource cannot change status, /status cannot change spec (node/service status strategies)."""
    keep = "spec" if subresource == "status" else "status"
    new = dict(new)
    if keep in old:
        new[keep] = old[keep]
    else:
        new.pop(keep, None)
    return new


class NodeStrategy(Strategy):
    def normalize(self, obj: Object) -> Object:
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
