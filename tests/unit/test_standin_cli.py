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
