"""What a real apiserver writes into a fresh cluster by itself, as far as a pod network sees it.

The `default/kubernetes` Service (controlplane's kubernetesservice controller): ClusterIP, the first address of
the primary service CIDR, port 443 named https to the apiserver's secure port, labels component=apiserver and
provider=kubernetes, no selector. Its EndpointSlice (the endpoint reconciler) names the address the apiserver
advertises and its port; the stand-in writes it only when it listens on an address an EndpointSlice may hold
(not loopback, not unspecified), as an apiserver never advertises those.
"""

from __future__ import annotations

from .endpointslices import special_ip_reason
from .errors import ApiError
from .ipalloc import IpRange
from .resources import ENDPOINT_SLICES, SERVICES
from .store import Store
from .validation import family, parse_ip

NAMESPACE, NAME = "default", "kubernetes"


def ensure_kubernetes_service(store: Store, primary: IpRange, host: str, port: int) -> None:
    """Create the Service and EndpointSlice when missing (start() after an outage finds them in place)."""
    labels = {"component": "apiserver", "provider": "kubernetes"}
    try:
        store.get(SERVICES, (NAMESPACE, NAME))
    except ApiError:
        store.create(SERVICES, {"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels}, "spec": {
            "clusterIP": str(primary.first()), "ports": [{"name": "https", "port": 443, "targetPort": port}]}})
    address = parse_ip(host)
    if address is None or special_ip_reason(address) is not None:
        return
    try:
        store.get(ENDPOINT_SLICES, (NAMESPACE, NAME))
    except ApiError:
        store.create(ENDPOINT_SLICES, {
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": family(address),
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
