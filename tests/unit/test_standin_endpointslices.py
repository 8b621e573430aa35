"""discovery.k8s.io/v1 EndpointSlices in the API stand-in, through the real client's DiscoveryV1Api: the
`kubernetes.io/service-name` selector for list and watch, defaults, generation, validation, discovery."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture
def disc(api_client):
    return client.DiscoveryV1Api(api_client)


def _slice(name, service, *addresses, node="n1", ready=True, address_type="IPv4"):
    return {"metadata": {"name": name, "labels": {SERVICE_NAME: service}}, "addressType": address_type,
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}, "nodeName": node} for a in addresses],
            "ports": [{"name": "http", "port": 8080}]}


def test_create_defaults_ports_and_starts_at_generation_one(disc):
    created = disc.create_namespaced_endpoint_slice("default", {**_slice("web-1", "web", "10.244.1.5"),
                                                                "ports": [{"port": 8080}]})
    assert created.metadata.generation == 1
    assert [(p.name, p.port, p.protocol) for p in created.ports] == [("", 8080, "TCP")]
    assert created.endpoints[0].node_name == "n1" and created.endpoints[0].conditions.ready is True
    raw = json.loads(disc.read_namespaced_endpoint_slice("web-1", "default", _preload_content=False).data)
    assert (raw["kind"], raw["apiVersion"]) == ("EndpointSlice", "discovery.k8s.io/v1")


def test_list_by_service_name_label_in_a_namespace_and_everywhere(disc):
    disc.create_namespaced_endpoint_slice("default", _slice("web-1", "web", "10.244.1.5"))
    disc.create_namespaced_endpoint_slice("default", _slice("web-2", "web", "10.244.2.5", node="n2"))
    disc.create_namespaced_endpoint_slice("default", _slice("db-1", "db", "10.244.1.9"))
    disc.create_namespaced_endpoint_slice("other", _slice("web-1", "web", "10.244.3.5", node="n3"))
    web = disc.list_namespaced_endpoint_slice("default", label_selector=f"{SERVICE_NAME}=web")
    assert [s.metadata.name for s in web.items] == ["web-1", "web-2"]
    body = json.loads(disc.list_namespaced_endpoint_slice("default", _preload_content=False).data)
    assert (body["kind"], body["apiVersion"]) == ("EndpointSliceList", "discovery.k8s.io/v1")
    everywhere = disc.list_endpoint_slice_for_all_namespaces(label_selector=f"{SERVICE_NAME}=web")
    assert [(s.metadata.namespace, s.metadata.name) for s in everywhere.items] == [
        ("default", "web-1"), ("default", "web-2"), ("other", "web-1")]
    not_web = disc.list_endpoint_slice_for_all_namespaces(label_selector=f"{SERVICE_NAME}!=web")
    assert [s.metadata.name for s in not_web.items] == ["db-1"]


def test_watch_by_service_name_replays_only_that_services_slices(disc):
    rv = disc.list_namespaced_endpoint_slice("default").metadata.resource_version
    disc.create_namespaced_endpoint_slice("default", _slice("web-1", "web", "10.244.1.5"))
    disc.create_namespaced_endpoint_slice("default", _slice("db-1", "db", "10.244.1.9"))
    disc.patch_namespaced_endpoint_slice("web-1", "default", {"endpoints": [
        {"addresses": ["10.244.1.5"], "conditions": {"ready": False}, "nodeName": "n1"}]})
    disc.delete_namespaced_endpoint_slice("web-1", "default")
    events = [(e["type"], e["object"].metadata.name, e["object"].endpoints[0].conditions.ready)
              for e in watch.Watch().stream(disc.list_namespaced_endpoint_slice, "default", resource_version=rv,
                                            label_selector=f"{SERVICE_NAME}=web", timeout_seconds=1)]
    assert events == [("ADDED", "web-1", True), ("MODIFIED", "web-1", False), ("DELETED", "web-1", False)]


def test_live_watch_sees_a_slice_relabelled_away_as_deleted(disc):
    rv = disc.list_endpoint_slice_for_all_namespaces().metadata.resource_version
    seen = []

    def consume():
        for event in watch.Watch().stream(disc.list_endpoint_slice_for_all_namespaces, resource_version=rv,
                                          label_selector=f"{SERVICE_NAME}=web", timeout_seconds=2):
            seen.append((event["type"], event["object"].metadata.name))

    t = threading.Thread(target=consume)
    t.start()
    disc.create_namespaced_endpoint_slice("default", _slice("web-1", "web", "10.244.1.5"))
    disc.create_namespaced_endpoint_slice("default", _slice("db-1", "db", "10.244.1.9"))
    disc.patch_namespaced_endpoint_slice("web-1", "default", {"metadata": {"labels": {SERVICE_NAME: "api"}}})
    t.join(30)
    assert not t.is_alive()
    assert seen == [("ADDED", "web-1"), ("DELETED", "web-1")]


def test_generation_moves_only_when_more_than_metadata_changes(disc):
    disc.create_namespaced_endpoint_slice("default", _slice("web-1", "web", "10.244.1.5"))
    labelled = disc.patch_namespaced_endpoint_slice("web-1", "default", {"metadata": {"labels": {"x": "1"}}})
    assert labelled.metadata.generation == 1
    moved = disc.patch_namespaced_endpoint_slice("web-1", "default", {"endpoints": [
        {"addresses": ["10.244.1.6"], "conditions": {"ready": True}}]})
    assert moved.metadata.generation == 2
    tried = disc.patch_namespaced_endpoint_slice("web-1", "default", {"metadata": {"generation": 99}})
    assert tried.metadata.generation == 2  # clients cannot write it


def test_an_empty_slice_serves_null_endpoints(disc):
    disc.create_namespaced_endpoint_slice("default", {"metadata": {"name": "none"}, "addressType": "IPv4",
                                                      "endpoints": []})
    raw = json.loads(disc.read_namespaced_endpoint_slice("none", "default", _preload_content=False).data)
    assert "endpoints" in raw and raw["endpoints"] is None
    assert disc.read_namespaced_endpoint_slice("none", "default").endpoints is None


def test_validation_and_immutable_address_type(disc):
    cases = [
        (_slice("b", "web", "fd00::5"), 'EndpointSlice.discovery.k8s.io "b" is invalid: endpoints[0].addresses[0]: '
                                        'Invalid value: "fd00::5": must be a valid IPv4 address'),
        (_slice("c", "web", "127.0.0.1"), 'EndpointSlice.discovery.k8s.io "c" is invalid: endpoints[0].addresses[0]:'
                                          ' Invalid value: "127.0.0.1": may not be in the loopback range '
                                          "(127.0.0.0/8, ::1/128)"),
        ({**_slice("d", "web"), "endpoints": [{"addresses": []}]},
         'EndpointSlice.discovery.k8s.io "d" is invalid: endpoints[0].addresses: Required value: must contain at '
         "least 1 address"),
        (_slice("e", "web", address_type="IP"), 'EndpointSlice.discovery.k8s.io "e" is invalid: addressType: '
                                                'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'),
    ]
    for body, message in cases:
        with pytest.raises(ApiException) as err:
            disc.create_namespaced_endpoint_slice("default", body)
        status = json.loads(err.value.body)
        assert (err.value.status, status["message"]) == (422, message)
        assert status["details"]["group"] == "discovery.k8s.io" and status["details"]["kind"] == "EndpointSlice"
    disc.create_namespaced_endpoint_slice("default", _slice("v6", "web", "fd00::5", address_type="IPv6"))
    with pytest.raises(ApiException) as err:
        disc.patch_namespaced_endpoint_slice("v6", "default", {"addressType": "IPv4", "endpoints": []})
    assert json.loads(err.value.body)["message"] == \
        'EndpointSlice.discovery.k8s.io "v6" is invalid: addressType: Invalid value: "IPv4": field is immutable'


def test_missing_slice_is_a_404_with_the_group_named(disc):
    with pytest.raises(ApiException) as err:
        disc.read_namespaced_endpoint_slice("nope", "default")
    assert json.loads(err.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'endpointslices.discovery.k8s.io "nope" not found', "reason": "NotFound", "code": 404,
        "details": {"name": "nope", "group": "discovery.k8s.io", "kind": "endpointslices"}}


def test_delete_answers_a_status_and_delete_collection_the_list(disc):
    created = disc.create_namespaced_endpoint_slice("default", _slice("web-1", "web", "10.244.1.5"))
    disc.create_namespaced_endpoint_slice("default", _slice("web-2", "web", "10.244.2.5"))
    disc.create_namespaced_endpoint_slice("default", _slice("db-1", "db", "10.244.1.9"))
    status = json.loads(disc.delete_namespaced_endpoint_slice("web-1", "default", _preload_content=False).data)
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {
        "name": "web-1", "group": "discovery.k8s.io", "kind": "endpointslices", "uid": created.metadata.uid}}
    gone = json.loads(disc.delete_collection_namespaced_endpoint_slice(
        "default", label_selector=f"{SERVICE_NAME}=web", _preload_content=False).data)
    assert gone["kind"] == "EndpointSliceList" and [i["metadata"]["name"] for i in gone["items"]] == ["web-2"]
    assert [s.metadata.name for s in disc.list_namespaced_endpoint_slice("default").items] == ["db-1"]


def test_group_discovery(api_client, disc):
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}
    assert groups["discovery.k8s.io"].preferred_version.group_version == "discovery.k8s.io/v1"
    assert client.DiscoveryApi(api_client).get_api_group().name == "discovery.k8s.io"
    resources = disc.get_api_resources()
    assert resources.group_version == "discovery.k8s.io/v1"
    assert [(r.name, r.kind, r.namespaced) for r in resources.resources] == [
        ("endpointslices", "EndpointSlice", True)]
    assert "watch" in resources.resources[0].verbs and "deletecollection" in resources.resources[0].verbs
