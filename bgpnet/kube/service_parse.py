"""Turn one Service or EndpointSlice (plain JSON dict, as the API server sent it) into the few facts bgpnet
keeps (pure).

Only facts, never whole objects: every agent watches every Service and EndpointSlice of the cluster, and what
a node needs of an EndpointSlice is one number, how many ready endpoints of that slice run on this node.

What is an error and what is not:
- a Service without a name or namespace → `BadObject` (the API server never serves one);
- an address that does not parse (in clusterIPs, externalIPs, the load-balancer status) is left out and
  reported in `ParsedService.dropped`; the rest of the Service is used. The API server validates these
  fields, except `status.loadBalancer.ingress`, which any controller with status access may write;
- `spec.loadBalancerIP` and the `bgpnet.io/load-balancer-ips` annotation are kept as written: the allocator
  judges them (and tells the user with an Event), announcing never uses them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from bgpnet.model import IPAddress, ServiceInfo

# A Service may ask for its LoadBalancer addresses with this annotation (comma-separated, one per family),
# as with MetalLB's `metallb.universe.tf/loadBalancerIPs`; `spec.loadBalancerIP` is deprecated upstream.
REQUESTED_IPS_KEY = "bgpnet.io/load-balancer-ips"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_FAMILIES = {"IPv4": 4, "IPv6": 6}


class BadObject(ValueError):
    """An object the API serves that bgpnet cannot use; `str()` names it and the reason."""

    def __init__(self, kind: str, name: str, reason: str) -> None:
        super().__init__(f'{kind} "{name}": {reason}')
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ParsedService:
    service: ServiceInfo
    dropped: tuple[str, ...] = ()  # addresses that did not parse, with their field


@dataclass(frozen=True)
class SliceFacts:
    """What one EndpointSlice tells this node: which Service it belongs to and how many of its endpoints on
    this node are ready and not terminating."""

    service_key: str
    local_ready: int


def parse_service(obj: dict[str, Any]) -> ParsedService:
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name") or "", meta.get("namespace") or ""
    if not name or not namespace:
        raise BadObject("service", f"{namespace}/{name}", "no metadata.name or metadata.namespace")
    spec = obj.get("spec") or {}
    status = (obj.get("status") or {}).get("loadBalancer") or {}
    dropped: list[str] = []
    cluster = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if isinstance(k, str) and k.startswith("bgpnet.io/") and isinstance(v, str)}
    requested = [spec["loadBalancerIP"]] if isinstance(spec.get("loadBalancerIP"), str) and spec["loadBalancerIP"] \
        else []
    requested += [t.strip() for t in annotations.get(REQUESTED_IPS_KEY, "").split(",") if t.strip()]
    return ParsedService(ServiceInfo(
        namespace=namespace, name=name, type=spec.get("type") or "ClusterIP",
        # "None" is a headless Service: no virtual address at all.
        cluster_ips=_addresses("spec.clusterIPs", [c for c in cluster if c != "None"], dropped),
        external_ips=_addresses("spec.externalIPs", spec.get("externalIPs") or [], dropped),
        ingress_ips=_addresses("status.loadBalancer.ingress",
                               [i.get("ip") for i in status.get("ingress") or [] if isinstance(i, dict)
                                and i.get("ip")], dropped),
        external_local=spec.get("externalTrafficPolicy") == "Local",
        internal_local=spec.get("internalTrafficPolicy") == "Local",
        load_balancer_class=spec.get("loadBalancerClass") or None,
        ip_families=tuple(_FAMILIES[f] for f in spec.get("ipFamilies") or [] if f in _FAMILIES),
        requested_ips=tuple(dict.fromkeys(requested)),
        labels=tuple(sorted((k, v) for k, v in (meta.get("labels") or {}).items()
                            if isinstance(k, str) and isinstance(v, str))),
        annotations=tuple(sorted(annotations.items())),
    ), tuple(dropped))


def _addresses(field: str, texts: list[Any], dropped: list[str]) -> tuple[IPAddress, ...]:
    out: list[IPAddress] = []
    for text in texts:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            dropped.append(f"{field}: {text!r}")
            continue
        if ip not in out:
            out.append(ip)
    return tuple(out)


def parse_slice(obj: dict[str, Any], node_name: str) -> SliceFacts:
    """An endpoint counts when its `nodeName` is this node, `conditions.ready` is not false and
    `conditions.terminating` is not true (a nil condition is unknown; the API says to read ready's as true).
    A terminating endpoint may still be ready (graceful shutdown) but should get no new connections, so a node
    whose last endpoint terminates stops announcing (kube-proxy's rule for externalTrafficPolicy: Local)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL) or ""
    if not namespace or not service:
        raise BadObject("endpointslice", f"{namespace}/{meta.get('name') or ''}",
                        f"no namespace or no {SERVICE_NAME_LABEL} label")
    if obj.get("addressType") == "FQDN":
        return SliceFacts(f"{namespace}/{service}", 0)
    ready = 0
    for endpoint in obj.get("endpoints") or []:  # the API serves `endpoints: null` for an empty slice
        if not isinstance(endpoint, dict) or endpoint.get("nodeName") != node_name:
            continue
        conditions = endpoint.get("conditions") or {}
        if conditions.get("ready") is not False and conditions.get("terminating") is not True:
            ready += 1
    return SliceFacts(f"{namespace}/{service}", ready)
