"""parse_service / parse_slice on Service and EndpointSlice JSON as the API server serves it."""

from __future__ import annotations

import ipaddress

import pytest

from bgpnet.kube.service_parse import (
    REQUESTED_IPS_KEY,
    SERVICE_NAME_LABEL,
    BadObject,
    SliceFacts,
    parse_service,
    parse_slice,
)

ip = ipaddress.ip_address


def service(name="web", namespace="default", annotations=None, labels=None, status=None, **spec):
    meta = {"name": name, "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    obj = {"metadata": meta, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def endpoint(node="n1", ready=True, terminating=None, conditions=True):
    ep = {"addresses": ["10.244.1.5"], "nodeName": node}
    if conditions:
        ep["conditions"] = {k: v for k, v in (("ready", ready), ("terminating", terminating)) if v is not None}
    return ep


def eslice(*endpoints, service_name="web", namespace="default", address_type="IPv4"):
    labels = {SERVICE_NAME_LABEL: service_name} if service_name else {}
    return {"metadata": {"name": f"{service_name}-abc", "namespace": namespace, "labels": labels},
            "addressType": address_type, "endpoints": list(endpoints)}


# ---- Services --------------------------------------------------------------------------------------------


def test_cluster_ip_service_as_defaulted_by_the_api_server():
    parsed = parse_service(service(type="ClusterIP", clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"],
                                   ipFamilies=["IPv4"], internalTrafficPolicy="Cluster"))
    svc = parsed.service
    assert parsed.dropped == ()
    assert svc.key == "default/web" and svc.type == "ClusterIP"
    assert svc.cluster_ips == (ip("10.96.0.10"),) and svc.ip_families == (4,)
    assert (svc.external_ips, svc.ingress_ips, svc.external_local, svc.internal_local) == ((), (), False, False)


def test_missing_type_defaults_to_cluster_ip_and_a_lone_cluster_ip_is_used():
    svc = parse_service(service(clusterIP="10.96.0.11")).service
    assert svc.type == "ClusterIP" and svc.cluster_ips == (ip("10.96.0.11"),)


def test_headless_service_has_no_virtual_address():
    svc = parse_service(service(clusterIP="None", clusterIPs=["None"])).service
    assert svc.cluster_ips == ()
    assert parse_service(service(clusterIP="None")).dropped == ()


def test_dual_stack_keeps_both_families_in_order():
    svc = parse_service(service(clusterIP="fd00:96::10", clusterIPs=["fd00:96::10", "10.96.0.10"],
                                ipFamilies=["IPv6", "IPv4"], ipFamilyPolicy="PreferDualStack")).service
    assert svc.cluster_ips == (ip("fd00:96::10"), ip("10.96.0.10"))
    assert svc.ip_families == (6, 4)


def test_bad_addresses_are_dropped_and_reported_the_rest_is_kept():
    parsed = parse_service(service(
        type="LoadBalancer", clusterIPs=["10.96.0.12"], externalIPs=["192.0.2.7", "not-an-ip", "192.0.2.7"],
        status={"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"ip": "300.1.1.1"},
                                             {"hostname": "lb.example.com"}, "junk"]}}))
    svc = parsed.service
    assert svc.external_ips == (ip("192.0.2.7"),)  # duplicates once
    assert svc.ingress_ips == (ip("198.51.100.1"),)  # hostname-only ingress points carry no address
    assert parsed.dropped == ("spec.externalIPs: 'not-an-ip'", "status.loadBalancer.ingress: '300.1.1.1'")


def test_load_balancer_fields_and_requested_addresses():
    parsed = parse_service(service(
        type="LoadBalancer", externalTrafficPolicy="Local", internalTrafficPolicy="Local",
        loadBalancerClass="bgpnet.io/lb", loadBalancerIP="192.0.2.10",
        annotations={REQUESTED_IPS_KEY: " 192.0.2.10, 2001:db8::10 ,", "other.io/x": "y", "bgpnet.io/k": "v"},
        labels={"app": "web"}))
    svc = parsed.service
    assert svc.external_local and svc.internal_local and svc.load_balancer_class == "bgpnet.io/lb"
    assert svc.requested_ips == ("192.0.2.10", "2001:db8::10")  # as written, judged by the allocator
    assert svc.annotations == (("bgpnet.io/k", "v"), (REQUESTED_IPS_KEY, " 192.0.2.10, 2001:db8::10 ,"))
    assert svc.annotation("other.io/x") is None and svc.labels == (("app", "web"),)


def test_a_service_without_name_or_namespace_is_a_bad_object():
    with pytest.raises(BadObject) as err:
        parse_service({"metadata": {"name": "web"}, "spec": {}})
    assert err.value.name == "/web" and "metadata.namespace" in err.value.reason
    with pytest.raises(BadObject):
        parse_service({})


def test_status_written_null_and_missing_spec_are_tolerated():
    svc = parse_service({"metadata": {"name": "x", "namespace": "ns"}, "spec": None,
                         "status": {"loadBalancer": None}}).service
    assert (svc.cluster_ips, svc.ingress_ips, svc.type) == ((), (), "ClusterIP")


# ---- EndpointSlices --------------------------------------------------------------------------------------


def test_ready_endpoints_on_this_node_are_counted():
    obj = eslice(endpoint(), endpoint(), endpoint(node="n2"), endpoint(ready=False))
    assert parse_slice(obj, "n1") == SliceFacts("default/web", 2)
    assert parse_slice(obj, "n2") == SliceFacts("default/web", 1)
    assert parse_slice(obj, "n3") == SliceFacts("default/web", 0)


def test_null_endpoints_is_an_empty_slice():
    obj = eslice()
    obj["endpoints"] = None  # what the API serves for a slice without endpoints
    assert parse_slice(obj, "n1") == SliceFacts("default/web", 0)
    del obj["endpoints"]
    assert parse_slice(obj, "n1") == SliceFacts("default/web", 0)


def test_terminating_endpoints_do_not_count_even_when_still_ready():
    obj = eslice(endpoint(ready=True, terminating=True), endpoint(ready=False, terminating=True))
    assert parse_slice(obj, "n1").local_ready == 0
    assert parse_slice(eslice(endpoint(terminating=False)), "n1").local_ready == 1


def test_nil_ready_condition_reads_as_ready():
    # "ready: nil" means unknown; the API tells consumers to interpret it as ready.
    assert parse_slice(eslice(endpoint(ready=None)), "n1").local_ready == 1
    assert parse_slice(eslice(endpoint(conditions=False)), "n1").local_ready == 1


def test_endpoint_without_node_name_or_malformed_is_not_local():
    no_node = {"addresses": ["10.244.1.5"], "conditions": {"ready": True}}
    assert parse_slice(eslice(no_node, "junk", None), "n1").local_ready == 0


def test_fqdn_slice_names_its_service_but_never_counts():
    obj = eslice(endpoint(), address_type="FQDN")
    assert parse_slice(obj, "n1") == SliceFacts("default/web", 0)


def test_slice_without_service_name_label_or_namespace_is_bad():
    with pytest.raises(BadObject) as err:
        parse_slice(eslice(endpoint(), service_name=""), "n1")
    assert SERVICE_NAME_LABEL in err.value.reason and err.value.name == "default/-abc"
    with pytest.raises(BadObject):
        parse_slice(eslice(endpoint(), namespace=""), "n1")
    with pytest.raises(BadObject):
        parse_slice({"metadata": {"name": "x", "namespace": "ns", "labels": None}}, "n1")


def test_slice_key_uses_the_slice_namespace_and_the_label():
    assert parse_slice(eslice(endpoint(), service_name="api", namespace="prod"), "n1").service_key == "prod/api"
