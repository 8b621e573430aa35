"""Services and their EndpointSlices in the lab's API stand-in, as a cluster's controllers would write them.

The stand-in has no EndpointSlice controller, so the lab (and the tests) write each Service's slice themselves:
one slice per Service and family, endpoints named by node — exactly what bgpnet reads of a real cluster's
slices. Plain dicts through the real `kubernetes` client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
LOAD_BALANCER_CLASS = "bgpnet.io/bgp"


def service_body(name: str, *, load_balancer: bool = True, local: bool = True, external_ips: Sequence[str] = (),
                 annotations: Mapping[str, str] | None = None, requested: str | None = None,
                 dual_stack: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                            "selector": {"app": name}}
    if load_balancer:
        spec.update(type="LoadBalancer", loadBalancerClass=LOAD_BALANCER_CLASS,
                    externalTrafficPolicy="Local" if local else "Cluster")
    elif external_ips:
        spec["externalTrafficPolicy"] = "Local" if local else "Cluster"
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    if requested:
        spec["loadBalancerIP"] = requested
    if dual_stack:
        spec.update(ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4", "IPv6"])
    return {"metadata": {"name": name, "annotations": dict(annotations or {})}, "spec": spec}


def slice_body(service: str, endpoints: Mapping[str, Sequence[str]], *, family: int = 4,
               terminating: Sequence[str] = ()) -> dict[str, Any]:
    """The slice of `service` with endpoints {node name: [pod addresses]} of one family; pods on nodes in
    `terminating` are terminating (not ready), as during a rollout."""
    items = []
    for node, addresses in sorted(endpoints.items()):
        for address in addresses:
            if ipaddress.ip_address(address).version != family:
                continue
            ending = node in terminating
            items.append({"addresses": [address], "nodeName": node,
                          "conditions": {"ready": not ending, "serving": True, "terminating": ending}})
    return {"metadata": {"name": f"{service}-v{family}", "labels": {SERVICE_NAME_LABEL: service}},
            "addressType": f"IPv{family}", "endpoints": items,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}


class LabServices:
    """Create and change Services and their slices; `call` runs a client call where the API is reachable (the
    lab's management namespace)."""

    def __init__(self, api_client: Any, call: Callable[..., Any], namespace: str = "default") -> None:
        import kubernetes  # here, not at import time: `bgpnet --help` should not pay for it

        self.core = kubernetes.client.CoreV1Api(api_client)
        self.discovery = kubernetes.client.DiscoveryV1Api(api_client)
        self.call = call
        self.namespace = namespace

    def create(self, name: str, endpoints: Mapping[str, Sequence[str]], **spec: Any) -> None:
        self.call(self.core.create_namespaced_service, self.namespace, service_body(name, **spec))
        self.set_endpoints(name, endpoints)

    def set_endpoints(self, name: str, endpoints: Mapping[str, Sequence[str]], *,
                      terminating: Sequence[str] = ()) -> None:
        """Replace the Service's slices (create them the first time), both families."""
        for family in (4, 6):
            body = slice_body(name, endpoints, family=family, terminating=terminating)
            try:
                self.call(self.discovery.replace_namespaced_endpoint_slice, body["metadata"]["name"],
                          self.namespace, body)
            except Exception as exc:  # 404: not there yet
                if getattr(exc, "status", None) != 404:
                    raise
                self.call(self.discovery.create_namespaced_endpoint_slice, self.namespace, body)

    def set_ingress(self, name: str, *addresses: str) -> None:
        """Write status.loadBalancer.ingress, as a LoadBalancer implementation does."""
        self.call(self.core.patch_namespaced_service_status, name, self.namespace,
                  {"status": {"loadBalancer": {"ingress": [{"ip": a} for a in addresses]}}})

    def ingress(self, name: str) -> list[str]:
        service = self.call(self.core.read_namespaced_service, name, self.namespace)
        return [i.ip for i in (service.status.load_balancer.ingress or [])] if service.status.load_balancer else []

    def delete(self, name: str) -> None:
        self.call(self.core.delete_namespaced_service, name, self.namespace)
        for family in (4, 6):
            try:
                self.call(self.discovery.delete_namespaced_endpoint_slice, f"{name}-v{family}", self.namespace)
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    raise
