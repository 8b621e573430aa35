"""CoreV1Subset sends what the real CoreV1Api sends, and drives the stand-in API for list, watch, patch, read.

The equivalence cases intercept `ApiClient.call_api` (the point where a generated method hands its finished
request to the REST client) and compare both classes' requests for the same arguments.
"""

import json

import pytest
from kubernetes import client

from bgpnet.config import PasswordRef
from bgpnet.kube.client import load_api_client
from bgpnet.kube.core_v1 import CoreV1Subset
from bgpnet.kube.lean_import import ApiException
from bgpnet.kube.secrets import PasswordReader, PasswordUnavailable
from bgpnet.model import Md5Password
from integration.kube_api import make_node


class Sent(Exception):
    pass


def request_of(api_client, call) -> dict:
    captured = {}

    def call_api(*request, _request_timeout=None):
        captured.update(request=request, timeout=_request_timeout)
        raise Sent()

    api_client.call_api = call_api
    with pytest.raises(Sent):
        call(api_client)
    return captured


@pytest.fixture
def api_client(standin, tmp_path):
    return load_api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))


PATCH = {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]}}
CALLS = {
    "list": (lambda api: api.list_node(_request_timeout=60.0), {"_preload_content": False}),
    "watch": (lambda api: api.list_node(watch=True, resource_version="42", allow_watch_bookmarks=True,
                                        timeout_seconds=300, _request_timeout=(10.0, 330.0)),
              {"_preload_content": False}),
    "patch status": (lambda api: api.patch_node_status(
        "n1", PATCH, _content_type="application/strategic-merge-patch+json"), {}),
    "patch status, default type": (lambda api: api.patch_node_status("n1", PATCH), {}),
    "read secret": (lambda api: api.read_namespaced_secret("bgp", "kube-system", _request_timeout=10), {}),
}


@pytest.mark.parametrize("name", CALLS)
def test_each_request_is_the_one_the_generated_api_sends(api_client, name):
    call, real_only = CALLS[name]

    def real(api):
        # The real methods take the same arguments; `_preload_content` only changes what they return.
        return call(_Adapter(client.CoreV1Api(api), real_only))

    assert request_of(api_client, lambda api: call(CoreV1Subset(api))) == request_of(api_client, real)


class _Adapter:
    def __init__(self, real, extra):
        self._real, self._extra = real, extra

    def __getattr__(self, method):
        return lambda *args, **kwargs: getattr(self._real, method)(*args, **kwargs, **self._extra)


def test_list_and_watch_return_the_raw_api_response(standin, api_client):
    standin.create_node(make_node("n1", ["10.0.0.1"], ["10.244.1.0/24"]))
    api = CoreV1Subset(api_client)
    listed = api.list_node(_request_timeout=10)
    body = json.loads(listed.data)
    listed.release_conn()
    assert [n["metadata"]["name"] for n in body["items"]] == ["n1"]
    standin.create_node(make_node("n2", ["10.0.0.2"], ["10.244.2.0/24"]))
    watch = api.list_node(watch=True, resource_version=body["metadata"]["resourceVersion"], timeout_seconds=1,
                          _request_timeout=(10, 30))
    events = [json.loads(line) for line in watch.data.splitlines() if line.strip()]
    watch.release_conn()
    assert ("ADDED", "n2") in [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_errors_are_the_clients_api_exceptions_with_the_status(api_client):
    with pytest.raises(ApiException) as err:
        CoreV1Subset(api_client).read_namespaced_secret("absent", "kube-system", _request_timeout=10)
    assert (type(err.value), err.value.status) == (client.exceptions.NotFoundException, 404)
    assert json.loads(err.value.body)["reason"] == "NotFound"


def test_secret_password_is_read_through_the_api(standin, api_client):
    standin.put_secret("bgpnet-system", "bgpnet-bgp-passwords", {"tor": "s3cret\n", "other": "x"})
    reader = PasswordReader(api_client)
    assert reader.read(PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "tor")) == Md5Password("s3cret")
    with pytest.raises(PasswordUnavailable, match="has no key 'nope'"):
        reader.read(PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "nope"))
    with pytest.raises(PasswordUnavailable, match="API error 404"):
        reader.read(PasswordRef("bgpnet-system", "missing", "tor"))


def test_an_unreachable_api_is_reported_without_the_value(standin, api_client):
    standin.put_secret("ns", "s", {"k": "v"})
    standin.stop()
    with pytest.raises(PasswordUnavailable, match=r"secret ns/s key k.*API unreachable"):
        PasswordReader(api_client).read(PasswordRef("ns", "s", "k"))
