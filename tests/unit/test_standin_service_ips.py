"""ClusterIP and NodePort allocation in the API stand-in, through the real `kubernetes` client: never twice the
same value, 422 for a requested one outside the range or in use, the IP family defaults, dual stack, and the
values the server allocated surviving updates that leave them out."""

from __future__ import annotations

import ipaddress
import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from integration.kube_api import KubeApiStandIn


def _svc(name, **spec):
    spec.setdefault("ports", [{"port": 80}])
    return {"metadata": {"name": name}, "spec": spec}


def _refusal(call):
    with pytest.raises(ApiException) as err:
        call()
    return err.value.status, json.loads(err.value.body)["message"]


@pytest.fixture
def make_api():
    """A stand-in with its own service CIDRs (and NodePort range) and a CoreV1Api for it."""
    started = []

    def make(*cidrs, **kwargs):
        standin = KubeApiStandIn(service_cidrs=cidrs, **kwargs).start()
        started.append(standin)
        cfg = client.Configuration()
        cfg.host = standin.url
        return client.CoreV1Api(client.ApiClient(cfg))

    yield make
    for standin in started:
        standin.stop()


def test_the_kubernetes_service_holds_the_first_address(api):
    kubernetes = api.read_namespaced_service("kubernetes", "default")
    assert kubernetes.spec.cluster_ip == "10.96.0.1" and kubernetes.spec.selector is None
    assert kubernetes.metadata.labels == {"component": "apiserver", "provider": "kubernetes"}
    assert [(p.name, p.port) for p in kubernetes.spec.ports] == [("https", 443)]
    status, message = _refusal(lambda: api.create_namespaced_service("default", _svc("x", clusterIP="10.96.0.1")))
    assert (status, message.endswith("failed to allocate IP 10.96.0.1: provided IP is already allocated")) == (
        422, True)


def test_allocated_cluster_ips_are_unique_usable_and_in_range(make_api):
    api = make_api("10.97.0.0/28", kubernetes_service=False)  # 14 usable addresses
    ips = [api.create_namespaced_service("default", _svc(f"s{n}")).spec.cluster_ip for n in range(14)]
    assert len(set(ips)) == 14
    assert {ipaddress.ip_address(ip) for ip in ips} == set(ipaddress.ip_network("10.97.0.0/28").hosts())
    status, message = _refusal(lambda: api.create_namespaced_service("default", _svc("full")))
    assert status == 500 and message == "Internal error occurred: failed to allocate a serviceIP: range is full"
    # Deleting a Service gives its address back at once.
    api.delete_namespaced_service("s3", "default")
    assert api.create_namespaced_service("default", _svc("again")).spec.cluster_ip == ips[3]


def test_dynamic_allocation_prefers_the_upper_band(make_api):
    api = make_api("10.98.0.0/24", kubernetes_service=False)  # lower band: 16 addresses kept for static requests
    ips = [ipaddress.ip_address(api.create_namespaced_service("default", _svc(f"s{n}")).spec.cluster_ip)
           for n in range(20)]
    assert min(ips) >= ipaddress.ip_address("10.98.0.17"), ips


def test_requested_cluster_ips_outside_the_range_or_taken_are_422(api):
    first = api.create_namespaced_service("default", _svc("a", clusterIP="10.96.7.7"))
    assert first.spec.cluster_ips == ["10.96.7.7"]
    cases = [
        ("10.96.7.7", 'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.7.7"}: failed to '
                      "allocate IP 10.96.7.7: provided IP is already allocated"),
        ("192.0.2.1", 'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"192.0.2.1"}: failed to '
                      "allocate IP 192.0.2.1: the provided IP (192.0.2.1) is not in the valid range. The range of "
                      "valid IPs is 10.96.0.0/16"),
        ("10.96.255.255", 'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.255.255"}: '
                          "failed to allocate IP 10.96.255.255: the provided IP (10.96.255.255) is not in the "
                          "valid range. The range of valid IPs is 10.96.0.0/16"),
        ("10.96.1.999", 'Service "b" is invalid: spec.clusterIPs[0]: Invalid value: "10.96.1.999": must be a '
                        "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
        ("fd00::1", 'Service "b" is invalid: spec.clusterIPs[0]: Invalid value: []string{"fd00::1"}: IPv6 is not '
                    "configured on this cluster"),
    ]
    for ip, message in cases:
        status, got = _refusal(lambda ip=ip: api.create_namespaced_service("default", _svc("b", clusterIP=ip)))
        assert (status, got) == (422, message)
    with pytest.raises(ApiException) as err:
        api.read_namespaced_service("b", "default")
    assert err.value.status == 404  # nothing was stored by the refused requests


def test_single_stack_cluster_refuses_dual_stack_demands(api):
    status, message = _refusal(lambda: api.create_namespaced_service(
        "default", _svc("d", ipFamilyPolicy="RequireDualStack")))
    assert (status, message) == (422, 'Service "d" is invalid: spec.ipFamilyPolicy: Invalid value: '
                                      '"RequireDualStack": this cluster is not configured for dual-stack services')
    prefer = api.create_namespaced_service("default", _svc("p", ipFamilyPolicy="PreferDualStack"))
    assert prefer.spec.ip_families == ["IPv4"] and len(prefer.spec.cluster_ips) == 1


def test_dual_stack_cluster_families_and_policies(make_api):
    api = make_api("10.96.0.0/16", "fd00:10:96::/112")
    single = api.create_namespaced_service("default", _svc("single"))
    assert single.spec.ip_families == ["IPv4"] and single.spec.ip_family_policy == "SingleStack"
    dual = api.create_namespaced_service("default", _svc("dual", ipFamilyPolicy="PreferDualStack"))
    assert dual.spec.ip_families == ["IPv4", "IPv6"]
    assert [ipaddress.ip_address(ip).version for ip in dual.spec.cluster_ips] == [4, 6]
    assert dual.spec.cluster_ip == dual.spec.cluster_ips[0]
    six_first = api.create_namespaced_service("default", _svc("v6", ipFamilies=["IPv6", "IPv4"],
                                                              ipFamilyPolicy="RequireDualStack"))
    assert [ipaddress.ip_address(ip).version for ip in six_first.spec.cluster_ips] == [6, 4]
    by_ip = api.create_namespaced_service("default", _svc("by-ip", clusterIP="fd00:10:96::99"))
    assert (by_ip.spec.ip_families, by_ip.spec.ip_family_policy) == (["IPv6"], "SingleStack")
    status, message = _refusal(lambda: api.create_namespaced_service(
        "default", _svc("two", ipFamilies=["IPv4", "IPv6"])))
    assert (status, message) == (422, 'Service "two" is invalid: spec.ipFamilyPolicy: Invalid value: '
                                      '"SingleStack": must be \'RequireDualStack\' or \'PreferDualStack\' when '
                                      "multiple IP families are specified")
    headless = api.create_namespaced_service("default", _svc("headless", clusterIP="None"))
    assert headless.spec.cluster_ips == ["None"] and headless.spec.ip_families == ["IPv4", "IPv6"]
    assert headless.spec.ip_family_policy == "RequireDualStack"  # headless and selectorless


def test_upgrade_to_dual_stack_adds_a_secondary_and_downgrade_needs_single_stack(make_api):
    api = make_api("10.96.0.0/16", "fd00:10:96::/112")
    svc = api.create_namespaced_service("default", _svc("web"))
    primary = svc.spec.cluster_ip
    up = api.patch_namespaced_service("web", "default", {"spec": {"ipFamilyPolicy": "PreferDualStack"}})
    assert up.spec.cluster_ips[0] == primary and ipaddress.ip_address(up.spec.cluster_ips[1]).version == 6
    status, message = _refusal(lambda: api.patch_namespaced_service(
        "web", "default", {"spec": {"ipFamilies": ["IPv4"], "clusterIPs": [primary]}}))
    assert status == 422 and "must be 'SingleStack' to release the secondary" in message
    down = api.patch_namespaced_service("web", "default", {"spec": {"ipFamilyPolicy": "SingleStack"}})
    assert down.spec.cluster_ips == [primary] and down.spec.ip_families == ["IPv4"]


def test_cluster_ip_is_immutable_and_carried_over_when_left_out(api):
    created = api.create_namespaced_service("default", _svc("web", selector={"app": "web"}))
    ip = created.spec.cluster_ip
    # A resubmitted manifest without the allocated address keeps it (patchAllocatedValues).
    replaced = api.replace_namespaced_service("web", "default", _svc("web", selector={"app": "v2"}))
    assert (replaced.spec.cluster_ip, replaced.spec.cluster_ips) == (ip, [ip])
    other = "10.96.200.200" if ip != "10.96.200.200" else "10.96.200.201"
    status, message = _refusal(lambda: api.patch_namespaced_service(
        "web", "default", {"spec": {"clusterIP": other, "clusterIPs": [other]}}))
    assert (status, message) == (422, f'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
                                      f'[]string{{"{other}"}}: may not change once set')
    assert api.read_namespaced_service("web", "default").spec.cluster_ip == ip


def test_external_name_has_no_cluster_ip_and_switching_type_allocates_and_releases(make_api):
    api = make_api("10.99.0.0/29", kubernetes_service=False)  # 6 usable addresses
    ext = api.create_namespaced_service("default", {"metadata": {"name": "ext"},
                                                    "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert (ext.spec.cluster_ip, ext.spec.ip_families, ext.spec.ip_family_policy) == (None, None, None)
    status, message = _refusal(lambda: api.create_namespaced_service("default", {
        "metadata": {"name": "bad"}, "spec": {"type": "ExternalName", "externalName": "example.com",
                                              "ipFamilyPolicy": "SingleStack"}}))
    assert (status, message) == (422, 'Service "bad" is invalid: spec.ipFamilyPolicy: Forbidden: may not be set '
                                      "for ExternalName services")
    to_cluster = api.patch_namespaced_service("ext", "default", {"spec": {"type": "ClusterIP", "externalName": None,
                                                                          "ports": [{"port": 80}]}})
    ip = to_cluster.spec.cluster_ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.99.0.0/29")
    back = api.patch_namespaced_service("ext", "default", {"spec": {"type": "ExternalName",
                                                                    "externalName": "example.org"}})
    assert back.spec.cluster_ip is None and back.spec.cluster_ips is None
    taken = [api.create_namespaced_service("default", _svc(f"s{n}")).spec.cluster_ip for n in range(6)]
    assert ip in taken  # released by the switch to ExternalName


def test_node_ports_are_allocated_unique_and_checked(make_api):
    api = make_api("10.96.0.0/16", node_port_range="30000-30009")
    lb = api.create_namespaced_service("default", _svc("lb", type="LoadBalancer", externalTrafficPolicy="Local",
                                                       ports=[{"name": "http", "port": 80},
                                                              {"name": "dns", "port": 53, "protocol": "UDP"}]))
    ports = [p.node_port for p in lb.spec.ports] + [lb.spec.health_check_node_port]
    assert len(set(ports)) == 3 and all(30000 <= p <= 30009 for p in ports)
    assert lb.spec.allocate_load_balancer_node_ports is True and lb.spec.external_traffic_policy == "Local"
    taken = lb.spec.ports[0].node_port
    status, message = _refusal(lambda: api.create_namespaced_service(
        "default", _svc("np", type="NodePort", ports=[{"port": 80, "nodePort": taken}])))
    assert (status, message) == (422, f'Service "np" is invalid: spec.ports[0].nodePort: Invalid value: {taken}: '
                                      "provided port is already allocated")
    status, message = _refusal(lambda: api.create_namespaced_service(
        "default", _svc("np", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])))
    assert (status, message) == (422, 'Service "np" is invalid: spec.ports[0].nodePort: Invalid value: 31000: '
                                      "provided port is not in the valid range. The range of valid ports is "
                                      "30000-30009")
    no_ports = api.create_namespaced_service("default", _svc("lb2", type="LoadBalancer",
                                                             allocateLoadBalancerNodePorts=False))
    assert no_ports.spec.ports[0].node_port is None
    kept = api.replace_namespaced_service("lb", "default", _svc(
        "lb", type="LoadBalancer", externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert [p.node_port for p in kept.spec.ports] + [kept.spec.health_check_node_port] == ports


@pytest.mark.parametrize(("cidrs", "message"), [
    (("10.0.0.0/11",), "specified service CIDR 10.0.0.0/11 is too large; for 32-bit addresses, the mask must be >= 12"),
    (("fd00::/100",), "specified service CIDR fd00::/100 is too large; for 128-bit addresses, the mask must be >= 108"),
    (("10.96.0.0/16", "10.97.0.0/16"), "service CIDRs must be of different IP families (one IPv4, one IPv6) for "
                                       "dual stack"),
    (("10.96.0.1/16",), "service CIDR '10.96.0.1/16' is invalid: 10.96.0.1/16 has host bits set"),
    ((), "at least one service CIDR is needed"),
])
def test_service_cidrs_the_apiserver_would_refuse(cidrs, message):
    with pytest.raises(ValueError) as err:
        KubeApiStandIn(service_cidrs=cidrs)
    assert str(err.value) == message
