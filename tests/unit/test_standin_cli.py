"""`python -m integration.kube_api` as the lab runs it: a subprocess driven over HTTP and stdin commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException


@pytest.fixture
def process(tmp_path):
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(
        "- metadata: {name: n1}\n"
        "  spec: {podCIDR: 10.244.1.0/24}\n"
        "  status: {addresses: [{type: InternalIP, address: 10.0.0.1}]}\n"
        "- kind: Secret\n"
        "  metadata: {name: bgp, namespace: kube-system}\n"
        "  data: {password: c2VjcmV0}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "integration.kube_api", "--listen", "127.0.0.1:0", "--nodes-file", str(nodes),
         "--control-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _command(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def test_cli_serves_the_nodes_file_and_obeys_control_commands(process):
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    cfg = client.Configuration()
    cfg.host = url
    with client.ApiClient(cfg) as api_client:
        api = client.CoreV1Api(api_client)
        nodes = api.list_node()
        # the v1 conversion fills spec.podCIDRs from a lone spec.podCIDR
        assert [(n.metadata.name, n.spec.pod_cidrs) for n in nodes.items] == [("n1", ["10.244.1.0/24"])]
        assert api.read_namespaced_secret("bgp", "kube-system").data == {"password": "c2VjcmV0"}
        old_rv = nodes.metadata.resource_version
        api.patch_node("n1", {"metadata": {"labels": {"x": "1"}}})
        assert _command(process, "compact") == {"resourceVersion": str(int(old_rv) + 1)}
        with pytest.raises(ApiException) as err:
            list(watch.Watch().stream(api.list_node, resource_version=old_rv, timeout_seconds=5))
        assert err.value.status == 410
        assert _command(process, "counts")["GET /api/v1/nodes"] == 1
        assert _command(process, "stop") == {"running": False}
        assert _command(process, "start") == {"running": True}
        assert api.read_node("n1").metadata.labels["x"] == "1"


def test_cli_service_cidrs_and_a_nodes_file_with_other_kinds(tmp_path):
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
        "spec: {selector: {app: web}, ports: [{port: 80}]}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\naddressType: IPv6\n"
        "endpoints: [{addresses: ['fd00:244::5']}]\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "integration.kube_api", "--listen", "127.0.0.1:0", "--nodes-file", str(objects),
         "--service-cidr", "fd00:96::/112", "--service-cidr", "10.96.0.0/16",
         "--service-node-port-range", "31000-31001"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        cfg = client.Configuration()
        cfg.host = proc.stdout.readline().strip()
        with client.ApiClient(cfg) as api_client:
            core = client.CoreV1Api(api_client)
            web = core.read_namespaced_service("web", "default")
            assert web.spec.ip_families == ["IPv6"] and web.spec.cluster_ip.startswith("fd00:96::")
            assert core.read_namespaced_service("kubernetes", "default").spec.cluster_ip == "fd00:96::1"
            dual = core.create_namespaced_service("default", {"metadata": {"name": "dual"}, "spec": {
                "type": "NodePort", "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}})
            assert dual.spec.ip_families == ["IPv6", "IPv4"] and dual.spec.ports[0].node_port in (31000, 31001)
            slices = client.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
                "default", label_selector="kubernetes.io/service-name=web")
            assert [s.endpoints[0].addresses for s in slices.items] == [["fd00:244::5"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_refuses_a_service_cidr_the_apiserver_would_refuse():
    proc = subprocess.run([sys.executable, "-m", "integration.kube_api", "--service-cidr", "10.0.0.0/8"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "specified service CIDR 10.0.0.0/8 is too large; for 32-bit addresses, the mask must be >= 12" in \
        proc.stderr
