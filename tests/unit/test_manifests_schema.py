"""Every manifest is a valid Kubernetes object for the API versions bgpnet supports, and applies in order.

`kubectl apply -f manifests/` reads the top-level *.yaml files in name order and is not recursive, so the
numbered prefixes are the apply order (the Namespace before anything that lives in it) and
manifests/optional/ is left to the operator. The schemas are the real OpenAPI ones, shipped offline by
kubernetes-validate, in strict mode (an unknown or misspelt field is an error, as `kubectl --validate=strict`
would report it).
"""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
# The oldest and the newest Kubernetes minor the manifests are checked against.
KUBERNETES_VERSIONS = ("1.31", "1.37")
NAMESPACE = "bgpnet-system"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}


def _documents(paths: list[Path]) -> list[tuple[str, dict]]:
    return [(p.name, doc) for p in paths for doc in yaml.safe_load_all(p.read_text()) if doc]


APPLIED = sorted(MANIFESTS.glob("*.yaml"))
OPTIONAL = sorted((MANIFESTS / "optional").glob("*.yaml"))
CORE_OBJECTS = [(n, d) for n, d in _documents(APPLIED + OPTIONAL) if d["apiVersion"] != "monitoring.coreos.com/v1"]


def _id(item: tuple[str, dict]) -> str:
    name, doc = item
    return f"{name}:{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("item", CORE_OBJECTS, ids=[_id(i) for i in CORE_OBJECTS])
def test_manifest_validates_against_kubernetes_schema(item, version):
    _, doc = item
    assert kubernetes_validate.validate(doc, version, strict=True) == version


def test_strict_validation_rejects_a_misspelt_field():
    # The check above can fail: the same validator refuses a DaemonSet with a typo in it.
    daemonset = next(d for _, d in CORE_OBJECTS if d["kind"] == "DaemonSet")
    broken = yaml.safe_load(yaml.safe_dump(daemonset))
    broken["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_manifests_dir_holds_the_expected_kinds():
    kinds = sorted(d["kind"] for _, d in _documents(APPLIED))
    assert kinds == sorted(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                            "DaemonSet", "Role", "RoleBinding", "Role", "RoleBinding"])


def test_namespace_is_applied_first_and_everything_else_lives_in_it():
    docs = _documents(APPLIED)
    assert docs[0][1]["kind"] == "Namespace" and docs[0][1]["metadata"]["name"] == NAMESPACE
    assert all(name[:2].isdigit() for name, _ in docs), "numbered files make the apply order explicit"
    for name, doc in docs + _documents(OPTIONAL):
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in doc["metadata"], name
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{name}: {doc['kind']}"


def test_podmonitor_selects_the_agent_pods_and_their_metrics_port():
    # No offline schema for the Prometheus Operator's CRD: check what matters, that it finds the agents.
    monitors = [d for _, d in _documents(OPTIONAL) if d["kind"] == "PodMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    daemonset = next(d for _, d in _documents(APPLIED) if d["kind"] == "DaemonSet")
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ports = {p["name"]: p["containerPort"] for c in daemonset["spec"]["template"]["spec"]["containers"]
             for p in c.get("ports", [])}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert ports[endpoint["port"]] == 9179 and endpoint["path"] == "/metrics"
