"""CoreV1Subset on a KubeConnection sends what the real CoreV1Api on a real ApiClient sends, and drives the
stand-in API for list, watch, patch, read.

The equivalence cases intercept `RESTClientObject.request` (the point where `ApiClient.call_api`, and
`KubeConnection.send`, hand the finished request to the client's transport) on both sides and compare the
requests field by field: method, URL with query, headers (Accept, Content-Type, User-Agent, auth), body,
form parameters and timeout.
"""

import itertools
import json

import pytest
from kubernetes import client

from bgpnet.config import PasswordRef
from bgpnet.kube.client import load_connection
from bgpnet.kube.connection import KubeConnection
from bgpnet.kube.core_v1 import CoreV1Subset
from bgpnet.kube.lean_import import ApiException
from bgpnet.kube.secrets import PasswordReader, PasswordUnavailable
from bgpnet.model import Md5Password
from integration.kube_api import make_node


class Sent(Exception):
    pass


def requests_of(owner, calls) -> list[dict]:
    """Each request the calls hand to `owner.rest_client`, stopped there (nothing reaches the network)."""
    captured = []

    def request(method, url, headers=None, body=None, post_params=None, _request_timeout=None):
        captured.append({"method": method, "url": url, "headers": headers, "body": body,
                         "post_params": post_params, "timeout": _request_timeout})
        raise Sent()

    owner.rest_client.request = request
    for call in calls:
        with pytest.raises(Sent):
            call()
    return captured


class _Adapter:
    """The real CoreV1Api, called with CoreV1Subset's arguments plus what only changes the return value."""

    def __init__(self, real, extra):
        self._real, self._extra = real, extra

    def __getattr__(self, method):
        return lambda *args, **kwargs: getattr(self._real, method)(*args, **kwargs, **self._extra)


def ours_and_real(make_configuration, calls):
    """The requests CoreV1Subset sends for `calls`, and those the real CoreV1Api sends, each side on its own
    Configuration from `make_configuration` (so a token hook runs the same number of times on each)."""
    connection = KubeConnection(make_configuration())
    api_client = client.ApiClient(make_configuration())
    ours = requests_of(connection, [lambda c=call: c[0](CoreV1Subset(connection)) for call in calls])
    real = requests_of(api_client, [lambda c=call: c[0](_Adapter(client.CoreV1Api(api_client), c[1]))
                                    for call in calls])
    return ours, real


PATCH = {"status": {"conditions": [{"type": "NetworkUnavailable", "status": "False"}]}}
RAW = {"_preload_content": False}  # the real methods then return the raw response, as CoreV1Subset does
CALLS = {
    "list": (lambda api: api.list_node(_request_timeout=60.0), RAW),
    "watch": (lambda api: api.list_node(watch=True, resource_version="42", allow_watch_bookmarks=True,
                                        timeout_seconds=300, _request_timeout=(10.0, 330.0)), RAW),
    "watch, no bookmarks, value to quote": (lambda api: api.list_node(
        watch=False, allow_watch_bookmarks=False, resource_version="4 2&x=/y", timeout_seconds=0), RAW),
    "patch status": (lambda api: api.patch_node_status(
        "n1", PATCH, _content_type="application/strategic-merge-patch+json"), {}),
    "patch status, default type": (lambda api: api.patch_node_status("n1", PATCH), {}),
    "patch status, empty body": (lambda api: api.patch_node_status("n1", {}), {}),
    "patch status, name to quote": (lambda api: api.patch_node_status(
        "n 1/ü?#", PATCH, _content_type="application/merge-patch+json", _request_timeout=5), {}),
    "read secret": (lambda api: api.read_namespaced_secret("bgp", "kube-system", _request_timeout=10), {}),
    "read secret, names to quote": (lambda api: api.read_namespaced_secret("{namespace}", "a b/c"), {}),
}


@pytest.fixture
def standin_configuration(standin, tmp_path):
    """A fresh Configuration from the stand-in's kubeconfig (token as 'authorization: Bearer ...')."""
    kubeconfig = standin.write_kubeconfig(str(tmp_path / "kubeconfig"))
    return lambda: load_connection(kubeconfig).configuration


@pytest.mark.parametrize("name", CALLS)
def test_each_request_is_the_one_the_generated_api_sends(standin_configuration, name):
    ours, real = ours_and_real(standin_configuration, [CALLS[name]])
    assert ours == real
    assert ours[0]["headers"]["authorization"] == "Bearer standin"


def rotating_configuration():
    """An in-cluster-like Configuration: api_key + prefix, and a hook that rotates the token on every use
    (as the in-cluster loader's hook re-reads the service-account token once it is a minute old)."""
    tokens = (f"tok{n}" for n in itertools.count(1))
    configuration = client.Configuration(host="https://10.96.0.1:443")
    configuration.api_key = {"BearerToken": "tok0"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    configuration.refresh_api_key_hook = lambda c: c.api_key.update(BearerToken=next(tokens))
    return configuration


def test_the_auth_header_is_asked_for_on_every_request_as_the_api_client_does():
    calls = [CALLS["list"], CALLS["read secret"], CALLS["patch status"]]
    ours, real = ours_and_real(rotating_configuration, calls)
    assert ours == real
    assert [r["headers"]["authorization"] for r in ours] == ["Bearer tok1", "Bearer tok2", "Bearer tok3"]
    assert [r["headers"].get("Cookie") for r in ours] == [None] * 3


def test_path_quoting_follows_the_configuration():
    def make():
        configuration = client.Configuration(host="http://127.0.0.1:1")
        configuration.safe_chars_for_path_param = "/ "
        return configuration

    ours, real = ours_and_real(make, [CALLS["read secret, names to quote"]])
    assert ours == real
    assert ours[0]["url"] == "http://127.0.0.1:1/api/v1/namespaces/a b/c/secrets/%7Bnamespace%7D"


def test_list_and_watch_return_the_raw_api_response(standin, tmp_path):
    standin.create_node(make_node("n1", ["10.0.0.1"], ["10.244.1.0/24"]))
    api = CoreV1Subset(load_connection(standin.write_kubeconfig(str(tmp_path / "kubeconfig"))))
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


@pytest.fixture
def connection(standin, tmp_path):
    return load_connection(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))


def test_errors_are_the_clients_api_exceptions_with_the_status(connection):
    with pytest.raises(ApiException) as err:
        CoreV1Subset(connection).read_namespaced_secret("absent", "kube-system", _request_timeout=10)
    assert (type(err.value), err.value.status) == (client.exceptions.NotFoundException, 404)
    assert json.loads(err.value.body)["reason"] == "NotFound"


def test_secret_password_is_read_through_the_api(standin, connection):
    standin.put_secret("bgpnet-system", "bgpnet-bgp-passwords", {"tor": "s3cret\n", "other": "x"})
    reader = PasswordReader(connection)
    assert reader.read(PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "tor")) == Md5Password("s3cret")
    with pytest.raises(PasswordUnavailable, match="has no key 'nope'"):
        reader.read(PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "nope"))
    with pytest.raises(PasswordUnavailable, match="API error 404"):
        reader.read(PasswordRef("bgpnet-system", "missing", "tor"))


def test_an_unreachable_api_is_reported_without_the_value(standin, connection):
    standin.put_secret("ns", "s", {"k": "v"})
    standin.stop()
    with pytest.raises(PasswordUnavailable, match=r"secret ns/s key k.*API unreachable"):
        PasswordReader(connection).read(PasswordRef("ns", "s", "k"))
