"""The generic registry behaviour of the API stand-in, the same for every resource it serves: routing and 404s,
core discovery, finalizers, delete-collection, dry run, system metadata, request counts, the kubernetes
Service's EndpointSlice — through the real `kubernetes` client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from integration.kube_api import make_node
from integration.kube_api.bootstrap import ensure_kubernetes_service

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def _raw(api_client, method, path, body=None):
    """One request through the client's own transport, answered as it came (no exception for an error)."""
    resp = api_client.call_api(*api_client.param_serialize(method, path, body=body))
    resp.read()
    return resp.status, json.loads(resp.data)


def test_core_discovery_lists_services_and_their_status_subresource(api):
    resources = {r.name: r for r in api.get_api_resources().resources}
    assert {"nodes", "nodes/status", "secrets", "events", "services", "services/status"} <= set(resources)
    svc = resources["services"]
    assert (svc.kind, svc.namespaced, svc.short_names, svc.categories) == ("Service", True, ["svc"], ["all"])
    assert "deletecollection" not in svc.verbs and "watch" in svc.verbs
    assert resources["services/status"].verbs == ["get", "patch", "update"]
    assert "deletecollection" in resources["nodes"].verbs


def test_unknown_paths_are_the_apiservers_404(api_client):
    not_found = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": "the server could not find the requested resource", "reason": "NotFound",
                 "details": {}, "code": 404}
    for path in ("/apis/example.com/v1", "/apis/coordination.k8s.io/v2", "/api/v1/namespaces/default/nodes",
                 "/api/v1/services/kubernetes", "/api/v1/namespaces/default/services/kubernetes/proxy",
                 "/apis/discovery.k8s.io/v1/namespaces/default/leases"):
        assert _raw(api_client, "GET", path) == (404, not_found), path


def test_create_needs_a_namespace_for_namespaced_kinds(api_client):
    status, body = _raw(api_client, "POST", "/api/v1/services", {"metadata": {"name": "x"}})
    assert (status, body["reason"]) == (405, "MethodNotAllowed")


def test_finalizers_hold_a_deleted_service_until_they_are_removed(api):
    api.create_namespaced_service("default", {"metadata": {"name": "lb", "finalizers": [FINALIZER]},
                                              "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    rv = api.list_namespaced_service("default").metadata.resource_version
    pending = api.delete_namespaced_service("lb", "default")
    assert pending.metadata.deletion_timestamp is not None and pending.metadata.finalizers == [FINALIZER]
    still = api.read_namespaced_service("lb", "default")
    assert still.metadata.deletion_timestamp == pending.metadata.deletion_timestamp
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_service("lb", "default", {"metadata": {"finalizers": [FINALIZER, "example.com/x"]}})
    assert (err.value.status, json.loads(err.value.body)["message"]) == (
        422, 'Service "lb" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the '
             'object is being deleted, found new finalizers []string{"example.com/x"}')
    api.patch_namespaced_service("lb", "default", {"metadata": {"finalizers": None}},
                                 _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as err:
        api.read_namespaced_service("lb", "default")
    assert err.value.status == 404
    events = [(e["type"], bool(e["object"].metadata.deletion_timestamp))
              for e in watch.Watch().stream(api.list_namespaced_service, "default", resource_version=rv,
                                            timeout_seconds=1)]
    assert events == [("MODIFIED", True), ("DELETED", True)]


def test_system_metadata_cannot_be_written_by_clients(api):
    created = api.create_namespaced_service("default", {"metadata": {"name": "web"}, "spec": {"ports": [
        {"port": 80}]}})
    patched = api.patch_namespaced_service("web", "default", {"metadata": {
        "uid": "forged", "creationTimestamp": "2000-01-01T00:00:00Z", "deletionTimestamp": "2000-01-01T00:00:00Z",
        "labels": {"a": "1"}}})
    assert patched.metadata.uid == created.metadata.uid
    assert patched.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert patched.metadata.deletion_timestamp is None and patched.metadata.labels == {"a": "1"}


def test_delete_collection_with_a_label_selector(api, standin):
    for name, rack in (("a", "r1"), ("b", "r1"), ("c", "r2")):
        standin.create_node(make_node(name, labels={"rack": rack}))
    api.delete_collection_node(label_selector="rack=r1")
    assert [n.metadata.name for n in api.list_node().items] == ["c"]


def test_dry_run_writes_nothing(api, standin):
    standin.create_node(make_node("n1"))
    rv = standin.resource_version
    dry = api.patch_node("n1", {"metadata": {"labels": {"x": "1"}}}, dry_run="All")
    assert dry.metadata.labels["x"] == "1"
    api.delete_node("n1", dry_run="All")
    assert "x" not in api.read_node("n1").metadata.labels and standin.resource_version == rv


def test_request_counts_name_group_routes(api_client, standin):
    coord = client.CoordinationV1Api(api_client)
    coord.list_namespaced_lease("default")
    with pytest.raises(ApiException):
        coord.read_namespaced_lease("x", "default")
    client.CoreV1Api(api_client).list_service_for_all_namespaces(watch=True, timeout_seconds=1,
                                                                 _preload_content=False).read()
    counts = standin.request_counts()
    assert counts["GET /apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"] == 1
    assert counts["GET /apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"] == 1
    assert counts["WATCH /api/v1/services"] == 1


def test_the_kubernetes_service_gets_an_endpoint_slice_on_a_routable_address(api_client, standin):
    disc = client.DiscoveryV1Api(api_client)
    assert disc.list_namespaced_endpoint_slice("default").items == []  # 127.0.0.1 is never advertised
    ensure_kubernetes_service(standin.store, standin.service_cidrs[0], "172.31.0.254", 6443)
    ensure_kubernetes_service(standin.store, standin.service_cidrs[0], "172.31.0.254", 6443)  # idempotent
    slices = disc.list_namespaced_endpoint_slice("default", label_selector="kubernetes.io/service-name=kubernetes")
    assert [(s.address_type, s.endpoints[0].addresses, [(p.name, p.port) for p in s.ports]) for s in slices.items] \
        == [("IPv4", ["172.31.0.254"], [("https", 6443)])]


def test_no_kubernetes_service_when_asked(standin):
    from integration.kube_api import KubeApiStandIn

    bare = KubeApiStandIn(kubernetes_service=False).start()
    try:
        cfg = client.Configuration()
        cfg.host = bare.url
        with client.ApiClient(cfg) as api_client:
            assert client.CoreV1Api(api_client).list_service_for_all_namespaces().items == []
    finally:
        bare.stop()
    assert [s["metadata"]["name"] for s in standin.objects("services")] == ["kubernetes"]
