"""The stand-in with TLS and a bearer token, as an in-cluster agent meets a real API server: the real `kubernetes`
client trusts only the CA it is given, sends the service-account token, and is turned away (401) without it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.config.kube_config import load_kube_config

from bgpnet.lab.incluster import write_credentials
from integration.kube_api import KubeApiStandIn, make_node


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return write_credentials(tmp_path_factory.mktemp("tls"), "127.0.0.1")


@pytest.fixture
def access_log():
    return io.StringIO()


@pytest.fixture
def secure(credentials, access_log):
    s = KubeApiStandIn(bookmark_interval=0.2, bookmark_before_timeout=0.1, tls_cert=str(credentials.cert),
                       tls_key=str(credentials.key), token=credentials.token, access_log=access_log).start()
    s.create_node(make_node("n1", ["10.0.0.1"], ["10.244.1.0/24"]))
    try:
        yield s
    finally:
        s.stop()


def _api(url, *, ca=None, token=None):
    cfg = client.Configuration()
    cfg.host = url
    cfg.ssl_ca_cert = ca
    cfg.retries = False  # a refused handshake must surface at once, not after urllib3's retries
    if token is not None:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.CoreV1Api(client.ApiClient(cfg))


def test_in_cluster_config_lists_watches_and_patches_over_https(secure, credentials, access_log):
    # The very loader the DaemonSet's agent runs, pointed at these files instead of /var/run/secrets/...
    cfg = client.Configuration()
    InClusterConfigLoader(token_filename=str(credentials.token_file), cert_filename=str(credentials.cert),
                          environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                   "KUBERNETES_SERVICE_PORT": secure.url.rsplit(":", 1)[1]}).load_and_set(cfg)
    assert cfg.host == secure.url and secure.url.startswith("https://127.0.0.1:")
    with client.ApiClient(cfg) as api_client:
        api = client.CoreV1Api(api_client)
        listed = api.list_node()
        assert [n.metadata.name for n in listed.items] == ["n1"]
        api.patch_node_status("n1", {"status": {"conditions": [
            {"type": "NetworkUnavailable", "status": "False", "reason": "BgpnetIsUp"}]}})
        events = list(watch.Watch().stream(api.list_node, resource_version=listed.metadata.resource_version,
                                           timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("MODIFIED", "n1")]
    conditions = {c["type"]: c["status"] for c in secure.get_node("n1")["status"]["conditions"]}
    assert conditions["NetworkUnavailable"] == "False"
    lines = access_log.getvalue().splitlines()
    assert lines and all('scheme="https" auth="bearer"' in line for line in lines)
    assert any('verb="PATCH" URI="/api/v1/nodes/n1/status" resp=200' in line for line in lines)


@pytest.mark.parametrize("token", ["wrong", None], ids=["wrong token", "no token"])
def test_a_request_without_the_token_gets_401_unauthorized(secure, credentials, token):
    with pytest.raises(ApiException) as err:
        _api(secure.url, ca=str(credentials.cert), token=token).list_node()
    assert err.value.status == 401
    assert json.loads(err.value.body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Failure", "message": "Unauthorized",
                                          "reason": "Unauthorized", "code": 401}
    assert secure.request_counts() == {"UNAUTHORIZED": 1}  # turned away before any route was served


def test_the_server_certificate_is_checked_against_the_ca(secure, credentials, tmp_path):
    other = write_credentials(tmp_path, "127.0.0.1")  # same address, a CA the server does not hold
    with pytest.raises(ApiException) as err:  # the client reports a failed handshake as status 0
        _api(secure.url, ca=str(other.cert), token=credentials.token).list_node()
    assert err.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in err.value.reason
    with pytest.raises(ApiException) as err:  # the right CA, but the certificate names 127.0.0.1 only
        _api(secure.url.replace("127.0.0.1", "localhost"), ca=str(credentials.cert), token=credentials.token
             ).list_node()
    assert err.value.status == 0 and "match" in err.value.reason
    assert secure.request_counts() == {}


def test_plain_http_is_not_served_on_a_tls_stand_in(secure):
    with pytest.raises(OSError):
        urllib.request.urlopen(secure.url.replace("https://", "http://") + "/version", timeout=5)
    assert secure.request_counts() == {}


def test_its_kubeconfig_carries_ca_and_token(secure, tmp_path):
    cfg = client.Configuration()
    load_kube_config(config_file=secure.write_kubeconfig(str(tmp_path / "kubeconfig")), client_configuration=cfg)
    with client.ApiClient(cfg) as api_client:
        assert client.CoreV1Api(api_client).read_node("n1").spec.pod_cidr == "10.244.1.0/24"


def test_stop_and_start_keep_serving_tls_with_the_same_token(secure, credentials):
    api = _api(secure.url, ca=str(credentials.cert), token=credentials.token)
    secure.stop()
    secure.start()
    assert api.read_node("n1").metadata.name == "n1"


def test_cli_prints_an_https_url_and_demands_the_token_file(credentials):
    proc = subprocess.Popen([sys.executable, "-m", "integration.kube_api", "--listen", "127.0.0.1:0",
                             "--tls-cert", str(credentials.cert), "--tls-key", str(credentials.key),
                             "--token-file", str(credentials.token_file), "--access-log"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        assert _api(url, ca=str(credentials.cert), token=credentials.token).list_node().items == []
        with pytest.raises(ApiException) as err:
            _api(url, ca=str(credentials.cert), token="nope").list_node()
        assert err.value.status == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = proc.stderr.read().splitlines()
    assert [line.split(" resp=")[1].split()[0] for line in log if line.startswith('"HTTP"')] == ["200", "401"]


def test_cli_refuses_a_certificate_without_its_key(credentials):
    proc = subprocess.run([sys.executable, "-m", "integration.kube_api", "--tls-cert", str(credentials.cert)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--tls-cert and --tls-key go together" in proc.stderr
