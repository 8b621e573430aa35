"""Services in the API stand-in, driven by the real `kubernetes` client: CRUD, defaults, selectors, list+watch,
patch flavours and the status subresource, answered as kube-apiserver answers them."""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException


def _svc(name, **spec):
    spec.setdefault("ports", [{"port": 80}])
    return {"metadata": {"name": name}, "spec": spec}


def _lb(name, **spec):
    return _svc(name, type="LoadBalancer", **spec)


def _names(items):
    return [(i.metadata.namespace, i.metadata.name) for i in items]


def test_create_applies_the_v1_defaults_and_allocates_a_cluster_ip(api):
    created = api.create_namespaced_service("default", _svc("web", selector={"app": "web"}))
    spec = created.spec
    assert spec.type == "ClusterIP" and spec.session_affinity == "None"
    assert spec.ip_family_policy == "SingleStack" and spec.ip_families == ["IPv4"]
    assert spec.cluster_ip.startswith("10.96.") and spec.cluster_ips == [spec.cluster_ip]
    assert spec.internal_traffic_policy == "Cluster" and spec.external_traffic_policy is None
    assert (spec.ports[0].protocol, spec.ports[0].target_port, spec.ports[0].node_port) == ("TCP", 80, None)
    raw = json.loads(api.read_namespaced_service("web", "default", _preload_content=False).data)
    assert raw["status"] == {"loadBalancer": {}}  # a fresh Service's status, as the apiserver writes it
    assert "externalTrafficPolicy" not in raw["spec"] and raw["kind"] == "Service"


def test_status_sent_on_create_is_dropped(api):
    body = _lb("lb")
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    assert api.create_namespaced_service("default", body).status.load_balancer.ingress is None


def test_list_and_get_across_namespaces_with_selectors(api):
    api.create_namespaced_service("a", _svc("web", selector={"app": "web"}))
    api.create_namespaced_service("b", {**_svc("db"), "metadata": {"name": "db", "labels": {"tier": "data"}}})
    api.create_namespaced_service("b", _svc("web"))
    everything = _names(api.list_service_for_all_namespaces().items)
    assert everything == [("a", "web"), ("b", "db"), ("b", "web"), ("default", "kubernetes")]
    assert _names(api.list_namespaced_service("b").items) == [("b", "db"), ("b", "web")]
    assert _names(api.list_service_for_all_namespaces(field_selector="metadata.name=web").items) == [
        ("a", "web"), ("b", "web")]
    assert _names(api.list_service_for_all_namespaces(field_selector="metadata.namespace=b,metadata.name!=db")
                  .items) == [("b", "web")]
    assert _names(api.list_service_for_all_namespaces(label_selector="tier=data").items) == [("b", "db")]
    assert _names(api.list_service_for_all_namespaces(label_selector="provider=kubernetes").items) == [
        ("default", "kubernetes")]
    with pytest.raises(ApiException) as err:
        api.list_service_for_all_namespaces(field_selector="spec.type=LoadBalancer")
    assert err.value.status == 400 and json.loads(err.value.body)["message"] == \
        "field label not supported: spec.type"


def test_list_kind_and_paging(api):
    for n in range(3):
        api.create_namespaced_service("default", _svc(f"s{n}"))
    first = api.list_namespaced_service("default", limit=2, _preload_content=False)
    body = json.loads(first.data)
    assert (body["kind"], body["apiVersion"]) == ("ServiceList", "v1")
    assert [i["metadata"]["name"] for i in body["items"]] == ["kubernetes", "s0"]
    rest = api.list_namespaced_service("default", limit=2, _continue=body["metadata"]["continue"])
    assert [i.metadata.name for i in rest.items] == ["s1", "s2"]


def test_watch_replays_changes_with_selectors_and_status_writes(api):
    rv = api.list_service_for_all_namespaces().metadata.resource_version
    api.create_namespaced_service("default", _lb("lb", selector={"app": "x"}))
    api.create_namespaced_service("other", _lb("lb"))
    api.patch_namespaced_service_status("lb", "default", {"status": {"loadBalancer": {"ingress": [
        {"ip": "192.0.2.7"}]}}})
    api.delete_namespaced_service("lb", "default")
    seen = [(e["type"], e["object"].metadata.namespace, e["object"].status.load_balancer.ingress)
            for e in watch.Watch().stream(api.list_namespaced_service, "default", resource_version=rv,
                                          field_selector="metadata.name=lb", timeout_seconds=1)]
    ingress = [client.V1LoadBalancerIngress(ip="192.0.2.7", ip_mode="VIP")]
    assert seen == [("ADDED", "default", None), ("MODIFIED", "default", ingress), ("DELETED", "default", ingress)]


def test_live_watch_of_all_namespaces_with_a_label_selector(api):
    rv = api.list_service_for_all_namespaces().metadata.resource_version
    seen = []

    def consume():
        for event in watch.Watch().stream(api.list_service_for_all_namespaces, resource_version=rv,
                                          label_selector="bgpnet.io/announce=true", timeout_seconds=2):
            seen.append((event["type"], event["object"].metadata.name))

    t = threading.Thread(target=consume)
    t.start()
    labelled = {"metadata": {"name": "on", "labels": {"bgpnet.io/announce": "true"}}, "spec": {"ports": [
        {"port": 80}]}}
    api.create_namespaced_service("default", labelled)
    api.create_namespaced_service("default", _svc("off"))
    api.patch_namespaced_service("on", "default", {"metadata": {"labels": {"bgpnet.io/announce": "false"}}})
    t.join(30)
    assert not t.is_alive()
    assert seen == [("ADDED", "on"), ("DELETED", "on")]  # leaving the selection is a DELETED


def test_bookmarks_name_the_service_kind(api):
    rv = api.list_namespaced_service("default").metadata.resource_version
    resp = api.list_namespaced_service("default", watch=True, resource_version=rv, allow_watch_bookmarks=True,
                                       timeout_seconds=1, _preload_content=False)
    lines = [json.loads(line) for line in watch.watch.iter_resp_lines(resp) if line]
    assert lines and all(e["type"] == "BOOKMARK" for e in lines)
    assert (lines[0]["object"]["kind"], lines[0]["object"]["apiVersion"]) == ("Service", "v1")


def test_status_subresource_changes_only_status(api):
    api.create_namespaced_service("default", _lb("lb"))
    updated = api.patch_namespaced_service_status("lb", "default", {
        "spec": {"sessionAffinity": "ClientIP"}, "metadata": {"labels": {"seen": "yes"}},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    assert updated.spec.session_affinity == "None"  # /status ignores spec
    assert updated.metadata.labels == {"seen": "yes"}  # metadata may change through /status
    assert updated.status.load_balancer.ingress == [client.V1LoadBalancerIngress(ip="192.0.2.10", ip_mode="VIP")]
    read = api.read_namespaced_service_status("lb", "default")
    assert read.status.load_balancer.ingress[0].ip == "192.0.2.10"
    # PUT on /status with a whole object: the spec change is ignored again, the status is taken.
    read.spec.session_affinity = "ClientIP"
    read.status.load_balancer.ingress = [client.V1LoadBalancerIngress(ip="192.0.2.11", ip_mode="Proxy")]
    replaced = api.replace_namespaced_service_status("lb", "default", read)
    assert replaced.spec.session_affinity == "None"
    assert replaced.status.load_balancer.ingress[0].ip_mode == "Proxy"


def test_main_resource_ignores_status_changes(api):
    api.create_namespaced_service("default", _lb("lb"))
    api.patch_namespaced_service_status("lb", "default", {"status": {"loadBalancer": {"ingress": [
        {"ip": "192.0.2.10"}]}}})
    patched = api.patch_namespaced_service("lb", "default", {
        "metadata": {"annotations": {"a": "1"}}, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99"}]}}})
    assert patched.metadata.annotations == {"a": "1"}
    assert patched.status.load_balancer.ingress[0].ip == "192.0.2.10"
    svc = api.read_namespaced_service("lb", "default")
    svc.status.load_balancer.ingress = []
    svc.spec.session_affinity = "ClientIP"
    replaced = api.replace_namespaced_service("lb", "default", svc)
    assert replaced.spec.session_affinity == "ClientIP"
    assert replaced.spec.session_affinity_config.client_ip.timeout_seconds == 10800  # defaulted
    assert replaced.status.load_balancer.ingress[0].ip == "192.0.2.10"


def test_status_only_takes_valid_ingress_points_and_only_on_load_balancers(api):
    api.create_namespaced_service("default", _lb("lb"))
    api.create_namespaced_service("default", _svc("plain"))
    cases = [
        ("lb", [{"ip": "not-an-ip"}], 'Service "lb" is invalid: status.loadBalancer.ingress[0].ip: Invalid value: '
                                      '"not-an-ip": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
        ("lb", [{"hostname": "192.0.2.1"}], 'Service "lb" is invalid: status.loadBalancer.ingress[0].hostname: '
                                            'Invalid value: "192.0.2.1": must be a DNS name, not an IP address'),
        ("plain", [{"ip": "192.0.2.1"}], 'Service "plain" is invalid: status.loadBalancer.ingress: Forbidden: may '
                                         "only be used when `spec.type` is 'LoadBalancer'"),
    ]
    for name, ingress, message in cases:
        with pytest.raises(ApiException) as err:
            api.patch_namespaced_service_status(name, "default", {"status": {"loadBalancer": {"ingress": ingress}}})
        assert err.value.status == 422 and json.loads(err.value.body)["message"] == message


def test_type_change_away_from_load_balancer_clears_its_status_and_ports(api):
    api.create_namespaced_service("default", _lb("lb", loadBalancerClass="bgpnet.io/lb"))
    api.patch_namespaced_service_status("lb", "default", {"status": {"loadBalancer": {"ingress": [
        {"ip": "192.0.2.10"}]}}})
    changed = api.patch_namespaced_service("lb", "default", {"spec": {"type": "ClusterIP"}})
    assert changed.status.load_balancer.ingress is None
    assert changed.spec.ports[0].node_port is None and changed.spec.load_balancer_class is None
    assert changed.spec.external_traffic_policy is None and changed.spec.allocate_load_balancer_node_ports is None


def test_patch_flavours_merge_ports_by_port_number(api):
    api.create_namespaced_service("default", _svc("web", ports=[{"name": "http", "port": 80}]))
    api.patch_namespaced_service("web", "default", {"spec": {"ports": [{"name": "https", "port": 443}]}})
    assert [p.port for p in api.read_namespaced_service("web", "default").spec.ports] == [80, 443]
    api.patch_namespaced_service("web", "default", {"spec": {"ports": [{"name": "https", "port": 8443}]}},
                                 _content_type="application/merge-patch+json")
    assert [p.port for p in api.read_namespaced_service("web", "default").spec.ports] == [8443]
    api.patch_namespaced_service("web", "default", [{"op": "add", "path": "/metadata/labels", "value": {"x": "1"}}])
    assert api.read_namespaced_service("web", "default").metadata.labels == {"x": "1"}


def test_delete_returns_the_service_and_missing_ones_are_404(api):
    created = api.create_namespaced_service("default", _svc("web"))
    deleted = api.delete_namespaced_service("web", "default")
    assert isinstance(deleted, client.V1Service) and deleted.metadata.uid == created.metadata.uid
    for call in (lambda: api.read_namespaced_service("web", "default"),
                 lambda: api.delete_namespaced_service("web", "default"),
                 lambda: api.patch_namespaced_service_status("web", "default", {"status": {}})):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 404
        assert json.loads(err.value.body) == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'services "web" not found', "reason": "NotFound", "code": 404,
            "details": {"name": "web", "kind": "services"}}


def test_create_twice_and_stale_update_are_409(api):
    api.create_namespaced_service("default", _svc("web"))
    with pytest.raises(ApiException) as err:
        api.create_namespaced_service("default", _svc("web"))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    stale = api.read_namespaced_service("web", "default")
    api.patch_namespaced_service("web", "default", {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(ApiException) as err:
        api.replace_namespaced_service("web", "default", stale)
    assert err.value.status == 409
    assert json.loads(err.value.body)["message"] == (
        'Operation cannot be fulfilled on services "web": the object has been modified; please apply your '
        "changes to the latest version and try again")


def test_replace_without_resource_version_is_unconditional_for_services(api):
    api.create_namespaced_service("default", _svc("web"))
    replaced = api.replace_namespaced_service("web", "default", _svc("web", selector={"app": "v2"}))
    assert replaced.spec.selector == {"app": "v2"}


def test_validation_errors_are_422_with_the_apiservers_wording(api):
    cases = [
        (_svc("Web"), 'Service "Web" is invalid: metadata.name: Invalid value: "Web": a DNS-1035 label must '
                      "consist of lower case alphanumeric characters or '-', start with an alphabetic character, "
                      "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
                      "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
        ({"metadata": {"name": "noports"}, "spec": {}}, 'Service "noports" is invalid: spec.ports: Required value'),
        (_svc("kind", type="Magic"), 'Service "kind" is invalid: spec.type: Unsupported value: "Magic": supported '
                                     'values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
        (_svc("eip", externalIPs=["192.0.2.300"]),
         'Service "eip" is invalid: spec.externalIPs[0]: Invalid value: "192.0.2.300": must be a valid IP '
         "address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
        (_svc("cls", loadBalancerClass="bgpnet.io/lb"),
         "Service \"cls\" is invalid: spec.loadBalancerClass: Forbidden: may only be used when `type` is "
         "'LoadBalancer'"),
        (_svc("etp", externalTrafficPolicy="Local"),
         'Service "etp" is invalid: spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
         "externally-accessible services"),
        (_svc("two", ports=[{"port": 80}, {"port": 81}]),
         'Service "two" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]'),
    ]
    for body, message in cases:
        with pytest.raises(ApiException) as err:
            api.create_namespaced_service("default", body)
        assert err.value.status == 422, body
        status = json.loads(err.value.body)
        assert status["message"] == message
        assert status["reason"] == "Invalid" and status["details"]["kind"] == "Service"
    assert _names(api.list_namespaced_service("default").items) == [("default", "kubernetes")]


def test_load_balancer_class_is_immutable_while_the_type_stays(api):
    api.create_namespaced_service("default", _lb("lb", loadBalancerClass="bgpnet.io/lb"))
    for new_class in ("other.io/lb", None):
        with pytest.raises(ApiException) as err:
            api.patch_namespaced_service("lb", "default", {"spec": {"loadBalancerClass": new_class}})
        assert err.value.status == 422
        shown = json.dumps(new_class) if new_class else '"null"'
        assert json.loads(err.value.body)["message"] == \
            f'Service "lb" is invalid: spec.loadBalancerClass: Invalid value: {shown}: may not change once set'
    assert api.read_namespaced_service("lb", "default").spec.load_balancer_class == "bgpnet.io/lb"
    api.create_namespaced_service("default", _lb("unclassed"))
    with pytest.raises(ApiException) as err:  # setting one later is a change too
        api.patch_namespaced_service("unclassed", "default", {"spec": {"loadBalancerClass": "bgpnet.io/lb"}})
    assert err.value.status == 422
    # Leaving LoadBalancer drops the class; coming back may pick another one.
    api.patch_namespaced_service("lb", "default", {"spec": {"type": "ClusterIP"}})
    back = api.patch_namespaced_service("lb", "default", {"spec": {"type": "LoadBalancer",
                                                                   "loadBalancerClass": "other.io/lb"}})
    assert back.spec.load_balancer_class == "other.io/lb"


def test_namespace_in_body_must_match_the_url(api):
    with pytest.raises(ApiException) as err:
        api.create_namespaced_service("default", {**_svc("web"), "metadata": {"name": "web", "namespace": "x"}})
    assert err.value.status == 400 and json.loads(err.value.body)["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request")


def test_dry_run_create_allocates_nothing(api):
    dry = api.create_namespaced_service("default", _svc("web", clusterIP="10.96.0.50"), dry_run="All")
    assert dry.spec.cluster_ip == "10.96.0.50" and dry.metadata.resource_version is None
    assert api.create_namespaced_service("default", _svc("web", clusterIP="10.96.0.50")).spec.cluster_ip == \
        "10.96.0.50"
