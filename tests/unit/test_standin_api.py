"""The Kubernetes API stand-in, driven by the real `kubernetes` client: it must answer as kube-apiserver does."""

from __future__ import annotations

import json
import threading

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from integration.kube_api import make_node


def _raw_watch(api, **kwargs):
    """All events of one watch request, as the JSON lines the server sent."""
    resp = api.list_node(watch=True, _preload_content=False, **kwargs)
    try:
        return [json.loads(line) for line in watch.watch.iter_resp_lines(resp) if line]
    finally:
        resp.release_conn()


def _add(standin, name, ip="10.0.0.1", cidr="10.244.1.0/24", **kw):
    return standin.create_node(make_node(name, [ip], [cidr], **kw))


def test_list_carries_resource_version_and_items_without_type_meta(standin, api):
    _add(standin, "n1")
    _add(standin, "n2", "10.0.0.2", "10.244.2.0/24")
    resp = api.list_node(_preload_content=False)
    body = json.loads(resp.data)
    assert body["kind"] == "NodeList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(standin.resource_version)
    assert [i["metadata"]["name"] for i in body["items"]] == ["n1", "n2"]
    assert "kind" not in body["items"][0]  # list items carry no TypeMeta on the wire
    typed = api.list_node()
    assert typed.items[1].spec.pod_cidrs == ["10.244.2.0/24"]


def test_paged_list_is_a_consistent_snapshot(standin, api):
    for n in range(5):
        _add(standin, f"n{n}", f"10.0.0.{n + 1}", f"10.244.{n}.0/24")
    first = api.list_node(limit=2)
    assert first.metadata.remaining_item_count == 3 and first.metadata._continue
    standin.create_node(make_node("n9", ["10.0.0.9"], []))  # after the snapshot: must not show up
    standin.delete_node("n4")  # deleted after the snapshot: must still show up
    names = [n.metadata.name for n in first.items]
    token = first.metadata._continue
    while token:
        page = api.list_node(limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [n.metadata.name for n in page.items]
        token = page.metadata._continue
    assert names == ["n0", "n1", "n2", "n3", "n4"]


def test_label_selector_filters_list(standin, api):
    _add(standin, "a", labels={"rack": "r1"})
    _add(standin, "b", labels={"rack": "r2"})
    _add(standin, "c")
    assert [n.metadata.name for n in api.list_node(label_selector="rack=r1").items] == ["a"]
    assert [n.metadata.name for n in api.list_node(label_selector="rack in (r1,r2)").items] == ["a", "b"]
    assert [n.metadata.name for n in api.list_node(label_selector="!rack").items] == ["c"]


def test_watch_from_list_rv_streams_changes_in_order(standin, api):
    _add(standin, "n1")
    rv = api.list_node().metadata.resource_version
    standin.create_node(make_node("n2", ["10.0.0.2"], ["10.244.2.0/24"]))
    standin.patch_node("n1", {"metadata": {"labels": {"x": "y"}}})
    standin.delete_node("n2")
    events = _raw_watch(api, resource_version=rv, timeout_seconds=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "n2"), ("MODIFIED", "n1"), ("DELETED", "n2")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    assert events[0]["object"]["kind"] == "Node"  # watch objects do carry TypeMeta
    assert rvs[-1] == standin.resource_version  # DELETED is stamped with the deletion's revision


def test_watch_without_resource_version_starts_with_synthetic_added(standin, api):
    _add(standin, "n1")
    _add(standin, "n2", "10.0.0.2", "10.244.2.0/24")
    events = _raw_watch(api, timeout_seconds=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "n1"), ("ADDED", "n2")]


def test_watch_delivers_live_events_and_ends_at_timeout(standin, api):
    rv = api.list_node().metadata.resource_version
    seen = []
    w = watch.Watch()

    def consume():
        for event in w.stream(api.list_node, resource_version=rv, timeout_seconds=2):
            seen.append((event["type"], event["object"].metadata.name))

    t = threading.Thread(target=consume)
    t.start()
    _add(standin, "live")
    t.join(30)
    assert not t.is_alive(), "the stream must end at timeoutSeconds"
    assert seen == [("ADDED", "live")]


def test_bookmarks_carry_current_rv_only_when_allowed(standin, api):
    _add(standin, "n1")
    rv = api.list_node().metadata.resource_version
    # A label-filtered watch sees no event for this change, but the bookmark moves past it.
    standin.create_node(make_node("other", ["10.0.0.3"], [], labels={"role": "x"}))
    events = _raw_watch(api, resource_version=rv, label_selector="!role", allow_watch_bookmarks=True,
                        timeout_seconds=1)
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert all(e["type"] == "BOOKMARK" for e in events)
    assert bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(standin.resource_version)
    assert bookmarks[-1]["object"]["kind"] == "Node"
    assert not [e for e in _raw_watch(api, resource_version=rv, label_selector="!role", timeout_seconds=1)
                if e["type"] == "BOOKMARK"]


def test_watch_from_compacted_rv_gets_410_expired_event(standin, api):
    _add(standin, "n1")
    old_rv = api.list_node().metadata.resource_version
    _add(standin, "n2", "10.0.0.2", "10.244.2.0/24")
    floor = standin.compact()
    events = _raw_watch(api, resource_version=old_rv, timeout_seconds=5)
    assert events == [{"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"too old resource version: {old_rv} ({floor})", "reason": "Expired", "code": 410}}]
    # The client library's own watch turns it into an ApiException 410 (retries disabled by timeout_seconds).
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(api.list_node, resource_version=old_rv, timeout_seconds=5))
    assert err.value.status == 410
    # From the current RV the watch works.
    assert _raw_watch(api, resource_version=str(floor), timeout_seconds=1) == []


def test_label_watch_sees_object_leaving_selection_as_deleted(standin, api):
    _add(standin, "n1", labels={"rack": "r1"})
    rv = api.list_node().metadata.resource_version
    standin.patch_node("n1", {"metadata": {"labels": {"rack": "r2"}}})
    events = _raw_watch(api, resource_version=rv, label_selector="rack=r1", timeout_seconds=1)
    assert [(e["type"], e["object"]["metadata"]["labels"]["rack"]) for e in events] == [("DELETED", "r1")]


def test_patch_node_status_merges_conditions_by_type(standin, api):
    _add(standin, "n1")
    before = standin.get_node("n1")["metadata"]["resourceVersion"]
    cond = {"type": "NetworkUnavailable", "status": "False", "reason": "A", "message": "up",
            "lastTransitionTime": "2025-01-02T00:00:00Z", "lastHeartbeatTime": "2025-01-02T00:00:00Z"}
    node = api.patch_node_status("n1", {"status": {"conditions": [cond]}})
    assert [c.type for c in node.status.conditions] == ["Ready", "NetworkUnavailable"]
    assert int(node.metadata.resource_version) > int(before)
    api.patch_node_status("n1", {"status": {"conditions": [{**cond, "status": "True", "reason": "B"}]}})
    conditions = {c["type"]: c for c in standin.get_node("n1")["status"]["conditions"]}
    assert len(conditions) == 2 and conditions["NetworkUnavailable"]["reason"] == "B"
    assert conditions["Ready"]["status"] == "True"


def test_patch_flavours_and_status_subresource_rules(standin, api):
    _add(standin, "n1")
    api.patch_node("n1", [{"op": "add", "path": "/metadata/labels/a", "value": "1"}])  # JSON patch
    api.patch_node("n1", {"metadata": {"labels": {"b": "2"}}}, _content_type="application/merge-patch+json")
    # The main resource ignores status, /status ignores spec (nodeStrategy / nodeStatusStrategy).
    api.patch_node("n1", {"status": {"addresses": []}, "spec": {"unschedulable": True}})
    api.patch_node_status("n1", {"spec": {"unschedulable": False}, "status": {"phase": "Running"}})
    node = standin.get_node("n1")
    assert node["metadata"]["labels"]["a"] == "1" and node["metadata"]["labels"]["b"] == "2"
    assert node["spec"]["unschedulable"] is True
    assert node["status"]["addresses"][0]["type"] == "InternalIP" and node["status"]["phase"] == "Running"


def test_noop_patch_keeps_resource_version(standin, api):
    _add(standin, "n1", labels={"a": "1"})
    rv = standin.resource_version
    api.patch_node("n1", {"metadata": {"labels": {"a": "1"}}})
    assert standin.resource_version == rv


def test_put_with_stale_resource_version_conflicts(standin, api):
    _add(standin, "n1")
    node = api.read_node("n1")
    node.metadata.labels["x"] = "1"
    updated = api.replace_node("n1", node)
    assert int(updated.metadata.resource_version) > int(node.metadata.resource_version)
    node.metadata.labels["x"] = "2"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        api.replace_node("n1", node)
    assert err.value.status == 409
    body = json.loads(err.value.body)
    assert body["reason"] == "Conflict" and body["details"] == {"name": "n1", "kind": "nodes"}
    assert body["message"] == ('Operation cannot be fulfilled on nodes "n1": the object has been modified; '
                               "please apply your changes to the latest version and try again")


def test_missing_node_is_a_404_status(standin, api):
    for call in (lambda: api.read_node("nope"), lambda: api.delete_node("nope"),
                 lambda: api.patch_node_status("nope", {"status": {}})):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 404
        assert json.loads(err.value.body) == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'nodes "nope" not found', "reason": "NotFound", "code": 404,
            "details": {"name": "nope", "kind": "nodes"}}


def test_create_twice_is_already_exists_and_delete_works(standin, api):
    api.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="n1")))
    with pytest.raises(ApiException) as err:
        api.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="n1")))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    status = api.delete_node("n1")  # the 37.x client hands the Status back as a plain dict
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert standin.nodes() == []


def test_secret_is_readable_and_discovery_answers(standin, api):
    standin.put_secret("kube-system", "bgp", {"password": "s3cret"})
    assert api.read_namespaced_secret("bgp", "kube-system").data == {"password": "czNjcmV0"}
    assert client.VersionApi(api.api_client).get_code().git_version.startswith("v1.")
    assert client.CoreApi(api.api_client).get_api_versions().versions == ["v1"]


def test_outage_refuses_connections_and_keeps_state(standin, api):
    _add(standin, "n1")
    url = standin.url
    standin.stop()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        api.list_node(_request_timeout=5)
    standin.start()
    assert standin.url == url
    assert [n.metadata.name for n in api.list_node().items] == ["n1"]


def test_outage_cuts_open_watches(standin, api):
    rv = api.list_node().metadata.resource_version
    resp = api.list_node(watch=True, resource_version=rv, timeout_seconds=60, _preload_content=False)
    result = []

    def read():
        try:
            result.append(list(watch.watch.iter_resp_lines(resp)))
        except urllib3.exceptions.ProtocolError as exc:
            result.append(exc)

    t = threading.Thread(target=read)
    t.start()
    standin.stop()
    t.join(30)
    assert not t.is_alive()
    # A cut stream, not a clean end of the chunked body (which a client would take for a watch timeout).
    assert isinstance(result[0], urllib3.exceptions.ProtocolError)


def test_request_counts(standin, api):
    _add(standin, "n1")
    api.list_node()
    api.read_node("n1")
    _raw_watch(api, resource_version=str(standin.resource_version), timeout_seconds=1)
    counts = standin.request_counts()
    assert counts["GET /api/v1/nodes"] == 1
    assert counts["GET /api/v1/nodes/{name}"] == 1
    assert counts["WATCH /api/v1/nodes"] == 1


def test_events_are_created_patched_and_listed_like_kubectl_describe_reads_them(standin, api):
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="node1.bgp-1", namespace="default"),
        involved_object=client.V1ObjectReference(kind="Node", name="node1", uid="node1"),
        reason="BGPSessionUp", message="BGP session with 172.31.0.12 (AS 64512) is Established", type="Normal",
        count=1, source=client.V1EventSource(component="bgpnet", host="node1"))
    created = api.create_namespaced_event("default", event)
    assert created.count == 1 and created.metadata.resource_version
    api.patch_namespaced_event("node1.bgp-1", "default", {"count": 2, "lastTimestamp": "2026-12-04T02:00:00Z"})
    listed = api.list_namespaced_event("default", field_selector="involvedObject.name=node1").items
    assert [(e.reason, e.count) for e in listed] == [("BGPSessionUp", 2)]
    assert api.list_namespaced_event("default", field_selector="involvedObject.name=node2").items == []
