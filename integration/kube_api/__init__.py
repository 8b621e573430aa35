"""A Kubernetes API stand-in for the subset bgpnet uses, driven by the real `kubernetes` client over HTTP or HTTPS.

`KubeApiStandIn` is the test and lab control surface: create/update/patch/delete objects directly (as if
written to etcd, no HTTP), `compact()` the event history so old resourceVersions get 410, `stop()`/`start()`
to simulate an API outage with state kept, and per-route request counts. `python -m integration.kube_api`
runs the same thing as a process (see __main__).

Served (resources.py): core/v1 Nodes (+status), Secrets, Events, Services (+status; ClusterIPs from
`service_cidrs`, NodePorts from `node_port_range`), discovery.k8s.io/v1 EndpointSlices and coordination.k8s.io/v1
Leases. Like a real apiserver it creates the `default/kubernetes` Service (the first IP of the primary service
CIDR) and, when it listens on a routable address, that Service's EndpointSlice naming the address and port;
`kubernetes_service=False` leaves both out.

By default it speaks plain HTTP without authentication (the client needs only its URL). Given a certificate and
key it speaks TLS only, and given a token it demands `Authorization: Bearer <token>` (401 otherwise): together
that is what an agent's in-cluster config (service-account token and CA) needs from a real API server.
"""

from __future__ import annotations

import copy
import json
import ssl
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from . import errors
from .bootstrap import ensure_kubernetes_service
from .ipalloc import PortRange, parse_service_cidrs
from .objects import make_node, make_secret
from .patch import json_merge_patch, strategic_merge_patch
from .registry import strategies
from .resources import NODES, RESOURCES, SECRETS, Resource, by_kind
from .selectors import label_predicate
from .server import HttpFront
from .store import Store

__all__ = ["KubeApiStandIn", "make_node", "make_secret"]

DEFAULT_SERVICE_CIDRS = ("10.96.0.0/16",)
DEFAULT_NODE_PORT_RANGE = "30000-32767"


class KubeApiStandIn:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bookmark_interval: float = 60.0,
        bookmark_before_timeout: float = 2.0,
        default_watch_timeout: float = 1800.0,
        history_limit: int = 10_000,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        token: str | None = None,
        access_log: TextIO | None = None,
        service_cidrs: Sequence[str] = DEFAULT_SERVICE_CIDRS,
        node_port_range: str = DEFAULT_NODE_PORT_RANGE,
        kubernetes_service: bool = True,
    ) -> None:
        """`tls_cert`/`tls_key` (PEM files, both or neither): serve HTTPS only; `tls_cert` is also the CA a client
        trusts (a self-signed certificate). `token`: require it as a bearer token. `access_log`: one line per
        response written there. `service_cidrs`: kube-apiserver's --service-cluster-ip-range (one CIDR, or one
        per family for dual stack, the first the primary); `node_port_range`: --service-node-port-range. Both
        raise ValueError when the apiserver would refuse them."""
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("the stand-in needs both tls_cert and tls_key for TLS, or neither")
        self.service_cidrs = parse_service_cidrs(list(service_cidrs))
        self.kubernetes_service = kubernetes_service
        self.tls_cert = tls_cert
        self.token = token
        context = None
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_key)
            context.set_alpn_protocols(["http/1.1"])  # what it serves; a Go client offering h2 falls back
        self.store = Store(history_limit, strategies(self.service_cidrs, PortRange.parse(node_port_range)))
        self._http = HttpFront(
            self.store, host, port, bookmark_interval=bookmark_interval,
            bookmark_before_timeout=bookmark_before_timeout, default_watch_timeout=default_watch_timeout,
            ssl_context=context, token=token, access_log=access_log,
        )

    # ---- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> KubeApiStandIn:
        self._http.start()
        if self.kubernetes_service:
            ensure_kubernetes_service(self.store, self.service_cidrs[0], self._http.host, self._http.port)
        return self

    def stop(self) -> None:
        """API outage: refuse connections and cut open ones (watches included); the state is kept."""
        self._http.stop()

    close = stop

    def __enter__(self) -> KubeApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._http.running

    @property
    def url(self) -> str:
        host = self._http.host
        host = f"[{host}]" if ":" in host else host
        return f"{self._http.scheme}://{host}:{self._http.port}"

    @property
    def bookmark_interval(self) -> float:
        return self._http.bookmark_interval

    @bookmark_interval.setter
    def bookmark_interval(self, seconds: float) -> None:
        self._http.bookmark_interval = seconds

    def kubeconfig(self) -> dict[str, Any]:
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls_cert is not None:
            cluster["certificate-authority"] = self.tls_cert
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": cluster}],
            "users": [{"name": "standin", "user": {"token": self.token or "standin"}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin"}}],
        }

    def write_kubeconfig(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.kubeconfig(), f)  # JSON is YAML: the client's kubeconfig loader reads it
        return path

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.store.cond:
            return self.store.rv

    def compact(self) -> int:
        return self.store.compact()

    def create_node(self, node: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(self.store.create(NODES, node))

    def update_node(self, node: dict[str, Any]) -> dict[str, Any]:
        """Replace spec, metadata and status in one unconditional write (as if straight into etcd)."""
        name = node["metadata"]["name"]
        key = ("", name)

        def replace(old: dict[str, Any]) -> dict[str, Any]:
            meta = {**node.get("metadata", {})}
            meta.pop("resourceVersion", None)
            return {**node, "metadata": meta}

        return copy.deepcopy(self.store.mutate(NODES, key, replace, subresource=None))

    def patch_node(self, name: str, patch: dict[str, Any], *, strategic: bool = True) -> dict[str, Any]:
        """Patch spec/metadata and status in one write (strategic merge by default, else JSON merge)."""
        apply = strategic_merge_patch if strategic else json_merge_patch
        key = ("", name)
        return copy.deepcopy(self.store.mutate(NODES, key, lambda old: apply(old, patch), subresource=None))

    def delete_node(self, name: str) -> None:
        self.store.delete(NODES, ("", name))

    def get_node(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.store.get(NODES, ("", name)))

    def nodes(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        items, _, _, _ = self.store.list(NODES, None, label_predicate(label_selector))
        return [json.loads(i) for i in items]

    def put_secret(self, namespace: str, name: str, data: dict[str, str | bytes]) -> dict[str, Any]:
        secret = make_secret(namespace, name, data)
        key = (namespace, name)
        try:
            self.store.get(SECRETS, key)
        except errors.ApiError:
            return copy.deepcopy(self.store.create(SECRETS, secret))
        return copy.deepcopy(self.store.update(SECRETS, key, secret, precondition=False))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create any served object as a client's POST would (defaults, allocation, validation included); its
        apiVersion/kind pick the resource (a Node when both are missing), a namespaced one lands in `default`
        unless it names its namespace."""
        resource = self._resource_of(obj)
        if resource.namespaced:
            meta = obj.get("metadata") or {}
            obj = {**obj, "metadata": {**meta, "namespace": meta.get("namespace") or "default"}}
        return copy.deepcopy(self.store.create(resource, obj))

    def get(self, plural: str, name: str, namespace: str = "", group: str = "") -> dict[str, Any]:
        """One stored object, e.g. `get("services", "web", "default")`, `get("leases", "x", "ns",
        "coordination.k8s.io")`; ApiError 404 when missing."""
        return copy.deepcopy(self.store.get(_resource(plural, group), (namespace, name)))

    def objects(self, plural: str, group: str = "") -> list[dict[str, Any]]:
        return copy.deepcopy(self.store.objects(_resource(plural, group)))

    def load(self, objects: list[dict[str, Any]]) -> None:
        """Create objects from a list (as read from a nodes file): each a Node unless its apiVersion/kind
        names another served kind."""
        for obj in objects:
            self.create(obj)

    def _resource_of(self, obj: dict[str, Any]) -> Resource:
        kind = obj.get("kind") or "Node"
        matches = [r for r in RESOURCES if r.kind == kind and obj.get("apiVersion") in (None, r.api_version)]
        resource = by_kind(obj.get("apiVersion") or "", kind) or (matches[0] if matches else None)
        if resource is None:
            raise ValueError(f"the stand-in does not serve {obj.get('apiVersion', '')} {kind}")
        return resource

    # ---- observation -------------------------------------------------------------------------------------

    def request_counts(self) -> Counter[str]:
        """Requests served, keyed like "GET /api/v1/nodes", "WATCH /api/v1/nodes",
        "PATCH /api/v1/nodes/{name}/status"; "BOOKMARK" counts bookmarks sent."""
        return self._http.counts()

    def request_count(self, key: str) -> int:
        return self._http.counts()[key]

    def reset_counts(self) -> None:
        self._http.reset_counts()


def _resource(plural: str, group: str) -> Resource:
    for resource in RESOURCES:
        if (resource.plural, resource.group) == (plural, group):
            return resource
    raise ValueError(f"the stand-in does not serve {plural}.{group}" if group else
                     f"the stand-in does not serve {plural}")
