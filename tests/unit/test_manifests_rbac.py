"""The agent's RBAC grants exactly the API calls its code makes: nothing missing, nothing extra.

The calls are derived from the source, not listed by hand: every attribute in bgpnet/ named like a method of
a kubernetes.client *Api class is a call site (`api.list_node(...)`, or `api.list_node` handed to
`Watch().stream`). A table maps each method to the permission it needs; `list_*` with `watch=True`, or
streamed, needs `watch` instead of `list`. A method missing from the table fails the test, so a new call
cannot slip in without its permission being decided.
"""

import ast
import inspect
from pathlib import Path

import kubernetes.client
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
NAMESPACE = "bgpnet-system"
SERVICE_ACCOUNT = "bgpnet-agent"
PASSWORDS_RBAC = MANIFESTS / "11-bgp-passwords-rbac.yaml"

# method -> (apiGroup, resource, verb) for the verbs the method implies; list_* becomes watch when watching.
METHOD_PERMISSIONS = {
    "list_node": ("", "nodes", "list"),
    "read_node": ("", "nodes", "get"),
    "patch_node": ("", "nodes", "patch"),
    "patch_node_status": ("", "nodes/status", "patch"),
    "read_node_status": ("", "nodes/status", "get"),
    "read_namespaced_secret": ("", "secrets", "get"),
    "list_namespaced_secret": ("", "secrets", "list"),
    "create_namespaced_event": ("", "events", "create"),
    "patch_namespaced_event": ("", "events", "patch"),
    "read_namespaced_config_map": ("", "configmaps", "get"),
    "list_service_for_all_namespaces": ("", "services", "list"),
    "list_endpoint_slice_for_all_namespaces": ("discovery.k8s.io", "endpointslices", "list"),
    "patch_namespaced_service_status": ("", "services/status", "patch"),
    "read_namespaced_lease": ("coordination.k8s.io", "leases", "get"),
    "create_namespaced_lease": ("coordination.k8s.io", "leases", "create"),
    "replace_namespaced_lease": ("coordination.k8s.io", "leases", "update"),
}
# Resources the agent may only touch in its own namespace (a Role); every other grant is cluster-wide (a
# ClusterRole): Nodes are cluster-scoped, and Services and their Events live in every namespace.
OWN_NAMESPACE_RESOURCES = {"secrets", "configmaps", "leases"}
# Methods on resources. The others (get_api_resources, get_code, close...) are discovery or client plumbing,
# which RBAC's default system:discovery role already allows to every authenticated user.
RESOURCE_VERB_PREFIXES = ("list_", "read_", "create_", "patch_", "replace_", "delete_", "connect_")


def _api_method_names() -> set[str]:
    names = set()
    for cls_name, cls in inspect.getmembers(kubernetes.client, inspect.isclass):
        if cls_name.endswith("Api") and cls_name != "ApiClient":
            names |= {m for m in vars(cls) if m.startswith(RESOURCE_VERB_PREFIXES)}
    return names


API_METHODS = _api_method_names()


def used_permissions(source: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every Kubernetes API method the source refers to."""
    tree = ast.parse(source)
    watched: set[int] = set()  # ids of Attribute nodes whose call watches instead of listing
    listed: set[int] = set()  # ids of Attribute nodes that both list and watch
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and any(
            kw.arg == "watch" and isinstance(kw.value, ast.Constant) and kw.value.value is True
            for kw in node.keywords
        ):
            watched.add(id(node.func))
        if isinstance(node.func, ast.Attribute) and node.func.attr == "stream":
            watched |= {id(a) for a in node.args if isinstance(a, ast.Attribute)}
        if isinstance(node.func, ast.Name) and node.func.id == "Reflector":
            # bgpnet.kube.reflector lists, then watches with the list method it is given: both verbs.
            reflected = [a for a in node.args if isinstance(a, ast.Attribute) and a.attr in API_METHODS]
            watched |= {id(a) for a in reflected}
            listed.update(id(a) for a in reflected)
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        method = node.attr.removesuffix("_with_http_info")
        if method not in API_METHODS:
            continue
        assert method in METHOD_PERMISSIONS, f"{method}: add the permission it needs to METHOD_PERMISSIONS"
        group, resource, verb = METHOD_PERMISSIONS[method]
        if id(node) in listed:
            found.add((group, resource, verb))
        if id(node) in watched and verb == "list":
            verb = "watch"
        found.add((group, resource, verb))
    return found


# `bgpnet lab` drives its own API stand-in (it creates the lab's Node objects); it never runs under the
# DaemonSet's ServiceAccount, so its calls are not the agent's permissions.
NOT_UNDER_THE_SERVICE_ACCOUNT = ("lab",)


def _code_permissions() -> set[tuple[str, str, str]]:
    found = set()
    for path in sorted((ROOT / "bgpnet").rglob("*.py")):
        if path.relative_to(ROOT / "bgpnet").parts[0] in NOT_UNDER_THE_SERVICE_ACCOUNT:
            continue
        found |= used_permissions(path.read_text())
    return found


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _applied() -> list[dict]:
    return [d for p in sorted(MANIFESTS.glob("*.yaml")) for d in _documents(p)]


def _bound_role_names(docs: list[dict], binding_kind: str) -> set[str]:
    names = set()
    for doc in docs:
        if doc["kind"] != binding_kind:
            continue
        subjects = {(s["kind"], s["name"], s.get("namespace")) for s in doc["subjects"]}
        if ("ServiceAccount", SERVICE_ACCOUNT, NAMESPACE) in subjects:
            names.add((doc["roleRef"]["kind"], doc["roleRef"]["name"]))
    return names


def granted_permissions(docs: list[dict]) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """(apiGroup, resource, verb) -> resourceNames ('' tuple: any) for the roles bound to the agent."""
    bound = _bound_role_names(docs, "ClusterRoleBinding") | _bound_role_names(docs, "RoleBinding")
    granted = {}
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role") or (doc["kind"], doc["metadata"]["name"]) not in bound:
            continue
        if doc["kind"] == "Role":
            assert doc["metadata"]["namespace"] == NAMESPACE, "Roles only in the agent's own namespace"
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    assert (resource in OWN_NAMESPACE_RESOURCES) == (doc["kind"] == "Role"), (
                        f"{resource}: own-namespace resources in a Role, the others in a ClusterRole")
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), "no wildcards"
                        granted[(group, resource, verb)] = tuple(rule.get("resourceNames", ()))
    return granted


def test_rbac_grants_exactly_the_api_calls_the_code_makes():
    used = _code_permissions()
    assert used, "no Kubernetes API call found in bgpnet/: the scan is broken"
    granted = granted_permissions(_applied())
    missing = used - set(granted)
    extra = set(granted) - used
    hint = ""
    if ("", "secrets", "get") in missing:
        hint = f" (the code reads the BGP password Secret: move {PASSWORDS_RBAC.relative_to(ROOT)} to manifests/)"
    assert not missing, f"permissions the code needs but manifests/ does not grant: {sorted(missing)}{hint}"
    assert not extra, f"permissions manifests/ grants but no code uses: {sorted(extra)}"


def test_secret_access_is_limited_to_the_named_password_secret():
    # Whether applied yet or still in manifests/optional/: `get` on one Secret by name, nothing else.
    docs = _applied() + _documents(PASSWORDS_RBAC)
    secret_rules = {k: v for k, v in granted_permissions(docs).items() if k[1] == "secrets"}
    assert secret_rules == {("", "secrets", "get"): ("bgpnet-bgp-passwords",)}


def test_the_daemonset_runs_as_the_bound_service_account():
    docs = _applied()
    (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    assert any(d["kind"] == "ServiceAccount" and d["metadata"]["name"] == SERVICE_ACCOUNT for d in docs)
    assert ("ClusterRole", "bgpnet-agent") in _bound_role_names(docs, "ClusterRoleBinding")


def test_call_scan_tells_list_from_watch_and_finds_streamed_references():
    source = (
        "api.list_node(_preload_content=False)\n"
        "api.list_node(watch=True, resource_version=rv)\n"
        "w.stream(core.list_namespaced_secret, namespace='x')\n"
        "core.read_namespaced_secret_with_http_info('p', 'ns')\n"
        "self.list_nodes_somehow()\n"
    )
    assert used_permissions(source) == {
        ("", "nodes", "list"), ("", "nodes", "watch"), ("", "secrets", "watch"), ("", "secrets", "get"),
    }


def test_rbac_comparison_catches_an_extra_grant():
    docs = _applied()
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    role = {**role, "rules": [*role["rules"], {"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]}]}
    granted = granted_permissions([role if d["kind"] == "ClusterRole" else d for d in docs])
    assert set(granted) - _code_permissions() == {("", "nodes", "delete")}
