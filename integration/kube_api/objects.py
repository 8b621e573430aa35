"""Builders for the Node and Secret objects tests and the lab put into the stand-in (plain JSON dicts)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any


def make_node(
    name: str,
    internal_ips: Iterable[str] = (),
    pod_cidrs: Iterable[str] = (),
    *,
    ready: bool = True,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    hostname: bool = True,
) -> dict[str, Any]:
    """A Node as kubelet registers it and node-ipam-controller completes it (podCIDR mirrors podCIDRs[0])."""
    cidrs = list(pod_cidrs)
    addresses = [{"type": "InternalIP", "address": ip} for ip in internal_ips]
    if hostname:
        addresses.append({"type": "Hostname", "address": name})
    spec: dict[str, Any] = {}
    if cidrs:
        spec = {"podCIDR": cidrs[0], "podCIDRs": cidrs}
    meta: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}
    if annotations:
        meta["annotations"] = dict(annotations)
    ts = "2025-01-01T00:00:00Z"
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": {
            "addresses": addresses,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "reason": "KubeletReady" if ready else "KubeletNotReady",
                 "message": "kubelet is posting ready status" if ready else "container runtime is down",
                 "lastHeartbeatTime": ts, "lastTransitionTime": ts},
            ],
        },
    }


def make_secret(namespace: str, name: str, data: Mapping[str, str | bytes]) -> dict[str, Any]:
    encoded = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()
    }
    return {"kind": "Secret", "apiVersion": "v1", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace}, "data": encoded}
