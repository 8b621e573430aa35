"""patch_node_condition lands on the API as kubelet/Calico send it; load_api_client finds its config."""

from __future__ import annotations

import datetime

import pytest
from kubernetes import client

from bgpnet.kube.client import load_api_client
from bgpnet.kube.node_status import condition_patch, patch_node_condition
from integration.kube_api import KubeApiStandIn, make_node


@pytest.fixture
def standin():
    s = KubeApiStandIn().start()
    try:
        yield s
    finally:
        s.stop()


def test_condition_patch_shape():
    now = datetime.datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=datetime.UTC)
    assert condition_patch("NetworkUnavailable", "False", "BgpnetIsUp", "bgpnet is running", now) == {
        "status": {"conditions": [{
            "type": "NetworkUnavailable", "status": "False", "reason": "BgpnetIsUp",
            "message": "bgpnet is running",
            "lastTransitionTime": "2025-03-04T05:06:07Z", "lastHeartbeatTime": "2025-03-04T05:06:07Z"}]}}


def test_network_unavailable_patch_lands_and_keeps_other_conditions(standin, tmp_path):
    standin.create_node(make_node("n1", ["10.0.0.1"], ["10.244.1.0/24"]))
    api_client = load_api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))
    patch_node_condition(api_client, "n1", "NetworkUnavailable", "False", "BgpnetIsUp", "bgpnet is running")
    conditions = {c["type"]: c for c in standin.get_node("n1")["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    mine = conditions["NetworkUnavailable"]
    assert (mine["status"], mine["reason"], mine["message"]) == ("False", "BgpnetIsUp", "bgpnet is running")
    assert mine["lastTransitionTime"].endswith("Z")
    assert standin.request_count("PATCH /api/v1/nodes/{name}/status") == 1


def test_patching_a_missing_node_raises_404(standin, tmp_path):
    api_client = load_api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))
    with pytest.raises(client.exceptions.ApiException) as err:
        patch_node_condition(api_client, "ghost", "NetworkUnavailable", "False", "r", "m")
    assert err.value.status == 404


def test_load_api_client_falls_back_to_home_kubeconfig(standin, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    standin.write_kubeconfig(str(tmp_path / ".kube" / "config"))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", "~/.kube/config")
    api_client = load_api_client(None)
    assert api_client.configuration.host == standin.url
    assert client.CoreV1Api(api_client).list_node().items == []


def test_load_api_client_prefers_in_cluster_config(tmp_path, monkeypatch):
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("tok")
    ca.write_text("not checked until a TLS connection is made")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_CERT_FILENAME", str(ca))
    api_client = load_api_client(None)
    assert api_client.configuration.host == "https://10.96.0.1:443"
    assert api_client.configuration.api_key["BearerToken"] == "bearer tok"
