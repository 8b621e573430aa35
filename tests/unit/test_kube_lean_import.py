"""The agent imports only the client pieces it uses, and the deferred packages still behave as the real ones.

Each case runs in a fresh interpreter: what is imported, and in which order, is the point.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from bgpnet.kube import lean_import
from bgpnet.kube.lean_import import LeanImportError

# What `bgpnet agent` imports (bgpnet/cli.py run_agent), plus the kubeconfig loader the lab and bench use.
AGENT_IMPORTS = """
import bgpnet.cli, bgpnet.agent, bgpnet.config, bgpnet.kube.client, bgpnet.kube.node_source
import bgpnet.kube.secrets, bgpnet.kube.node_status, bgpnet.http_server, bgpnet.metrics
"""


def run_python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def loaded_after(code: str) -> list[str]:
    return run_python(code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n")


# An agent in a pod: in-cluster config (service-account files as a pod sees them), the connection built, and
# one request sent through it to a closed port on 127.0.0.1, so the whole sending path (urllib3, TLS context,
# retries, the token hook) has run by the time the modules are counted.
IN_CLUSTER_AGENT = AGENT_IMPORTS + """
import os, socket, tempfile
import kubernetes.config.incluster_config as incluster
from bgpnet.kube.core_v1 import CoreV1Subset
files = tempfile.mkdtemp()
for name, text in (("token", "tok"), ("ca.crt", "not read: the connection is refused before TLS")):
    with open(os.path.join(files, name), "w") as f:
        f.write(text)
incluster.SERVICE_TOKEN_FILENAME = os.path.join(files, "token")
incluster.SERVICE_CERT_FILENAME = os.path.join(files, "ca.crt")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]  # closed again: nothing listens there
os.environ.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(port))
connection = bgpnet.kube.client.load_connection(None)
assert connection.configuration.host == f"https://127.0.0.1:{port}", connection.configuration.host
try:
    CoreV1Subset(connection).list_node(_request_timeout=5)
except Exception as exc:
    sent = type(exc).__name__
assert sent == "MaxRetryError", sent
"""
# Loaded by `ApiClient` and `CoreV1Api`, and used for nothing the agent does (~9 MB together).
NOT_FOR_THE_AGENT = ("kubernetes.client.api_client", "kubernetes.client.api_response", "pydantic", "pydantic_core",
                     "dateutil", "multiprocessing.pool")


def test_an_in_cluster_agent_loads_no_api_client_pydantic_dateutil_or_process_pool():
    modules = loaded_after(IN_CLUSTER_AGENT)
    assert [m for m in modules if m.startswith(NOT_FOR_THE_AGENT)] == []
    assert "kubernetes.client.rest" in modules  # the sending path did run


def test_agent_imports_load_no_model_no_api_class_and_no_unused_package():
    modules = loaded_after(IN_CLUSTER_AGENT)
    models = [m for m in modules if m.startswith("kubernetes.client.models.")]
    apis = [m for m in modules if m.startswith("kubernetes.client.api.")]
    unused = [m for m in modules if m.split(".")[:2] in (
        ["kubernetes", "dynamic"], ["kubernetes", "watch"], ["kubernetes", "stream"], ["kubernetes", "informer"],
        ["kubernetes", "leaderelection"], ["kubernetes_validate"], ["jsonschema"])]
    assert (models, apis, unused) == ([], [], [])
    # In-cluster agents never load the kubeconfig machinery.
    assert [m for m in modules if m.startswith(("kubernetes.config.kube_config", "requests", "oauthlib"))] == []
    assert len([m for m in modules if m.startswith("kubernetes")]) < 25


def test_kubeconfig_loading_adds_only_the_kubeconfig_loader(standin, tmp_path):
    kubeconfig = standin.write_kubeconfig(str(tmp_path / "kubeconfig"))
    modules = loaded_after(AGENT_IMPORTS + f"bgpnet.kube.client.load_connection({kubeconfig!r})\n")
    assert "kubernetes.config.kube_config" in modules
    assert [m for m in modules if m.startswith(("kubernetes.client.models.", "kubernetes.client.api."))] == []


def test_ordinary_use_after_the_lean_import_completes_the_real_packages():
    result = run_python("""
        import json
        from bgpnet.kube import lean_import
        before = {n: lean_import.is_deferred(n) for n in lean_import.DEFERRED_PACKAGES}
        import kubernetes
        from kubernetes import client, config, dynamic, utils, watch
        checks = {
            "version": kubernetes.__version__,
            "watch": watch.Watch.__module__,
            "dynamic": dynamic.DynamicClient.__module__,
            "create_from_yaml": utils.create_from_yaml.__module__,
            "load_kube_config": config.load_kube_config.__module__,
            "list_node": hasattr(client.CoreV1Api, "list_node"),
            "same_rest_client": lean_import.RESTClientObject is client.rest.RESTClientObject,
            "same_exception": lean_import.ApiException is client.exceptions.ApiException,
        }
        after = {n: lean_import.is_deferred(n) for n in lean_import.DEFERRED_PACKAGES}
        print(json.dumps([before, checks, after]))
    """)
    before, checks, after = result
    assert before == {"kubernetes": True, "kubernetes.utils": True, "kubernetes.config": True}
    assert checks == {"version": checks["version"], "watch": "kubernetes.watch.watch",
                      "dynamic": "kubernetes.dynamic.client", "create_from_yaml": "kubernetes.utils.create_from_yaml",
                      "load_kube_config": "kubernetes.config.kube_config", "list_node": True,
                      "same_rest_client": True, "same_exception": True}
    assert checks["version"].startswith("37.")
    assert after == {"kubernetes": False, "kubernetes.utils": False, "kubernetes.config": False}


def test_dir_of_a_deferred_package_completes_it():
    names = run_python("""
        import json, kubernetes.client
        from bgpnet.kube import lean_import
        import kubernetes
        print(json.dumps([n for n in ("watch", "informer", "__version__") if n in dir(kubernetes)]))
    """)
    assert names == ["watch", "informer", "__version__"]


def test_kubernetes_imported_normally_first_is_left_alone():
    result = run_python("""
        import json, kubernetes
        from bgpnet.kube import lean_import
        print(json.dumps([lean_import.is_deferred("kubernetes"),
                          lean_import.RESTClientObject is kubernetes.client.rest.RESTClientObject,
                          lean_import.Configuration is kubernetes.client.Configuration]))
    """)
    assert result == [False, True, True]


def test_a_missing_client_piece_fails_loudly_naming_it_and_the_pin():
    with pytest.raises(LeanImportError, match=r"has no kubernetes\.client\.rest\.NoSuchThing .*kubernetes>=37"):
        lean_import._attr("kubernetes.client.rest", "NoSuchThing")
    with pytest.raises(LeanImportError, match="has no package bgpnet_no_such_package"):
        lean_import._defer("bgpnet_no_such_package")
