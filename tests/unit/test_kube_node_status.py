"""patch_node_condition lands on the API as kubelet/Calico send it; api_client finds its config."""

from __future__ import annotations

import datetime
import types

import pytest
from kubernetes import client

from bgpnet.kube.client import KubeConfigError, api_client
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
    api = api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))
    patch_node_condition(api, "n1", "NetworkUnavailable", "False", "BgpnetIsUp", "bgpnet is running")
    conditions = {c["type"]: c for c in standin.get_node("n1")["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    mine = conditions["NetworkUnavailable"]
    assert (mine["status"], mine["reason"], mine["message"]) == ("False", "BgpnetIsUp", "bgpnet is running")
    assert mine["lastTransitionTime"].endswith("Z")
    assert standin.request_count("PATCH /api/v1/nodes/{name}/status") == 1


def test_patching_a_missing_node_raises_404(standin, tmp_path):
    api = api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))
    with pytest.raises(client.exceptions.ApiException) as err:
        patch_node_condition(api, "ghost", "NetworkUnavailable", "False", "r", "m")
    assert err.value.status == 404


def test_load_connection_falls_back_to_home_kubeconfig(standin, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    standin.write_kubeconfig(str(tmp_path / ".kube" / "config"))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", "~/.kube/config")
    api = api_client(None)
    assert api.configuration.host == standin.url
    assert client.CoreV1Api(api).list_node().items == []


@pytest.fixture
def in_cluster(tmp_path, monkeypatch):
    """The service-account files and environment a pod sees; returns the token file."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("tok")
    ca.write_text("not checked until a TLS connection is made")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr("kubernetes.config.incluster_config.SERVICE_CERT_FILENAME", str(ca))
    return token


def test_load_connection_prefers_in_cluster_config(in_cluster):
    api = api_client(None)
    assert api.configuration.host == "https://10.96.0.1:443"
    assert api.configuration.api_key["BearerToken"] == "bearer tok"


def test_a_rotated_service_account_token_reaches_the_next_request(in_cluster, monkeypatch):
    # kubelet rewrites the projected token file before the token expires; the in-cluster loader's
    # refresh_api_key_hook re-reads it once the copy it holds is a minute old.
    # ApiClient asks its configuration for the auth settings on every request, which runs that hook.
    api = api_client(None)
    first = api.configuration.auth_settings()["BearerToken"]["value"]
    in_cluster.write_text("tok2")
    assert api.configuration.auth_settings()["BearerToken"]["value"] == first == "bearer tok"
    later = datetime.datetime.now() + datetime.timedelta(minutes=2)
    clock = types.SimpleNamespace(datetime=types.SimpleNamespace(now=lambda: later), timedelta=datetime.timedelta)
    monkeypatch.setattr("kubernetes.config.incluster_config.datetime", clock)
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "bearer tok2"


@pytest.mark.parametrize("content", [None, "not: [valid", "- a list\n"])
def test_a_bad_kubeconfig_is_one_line(tmp_path, content):
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KubeConfigError) as err:
        api_client(str(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(f"cannot load Kubernetes credentials from {path}")
