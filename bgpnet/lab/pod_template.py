"""A DaemonSet's pod template turned into `podman run` command lines, as a kubelet would run it on one node.

`podman kube play` cannot put a hostNetwork pod into an existing network namespace (a lab node is one), so the
lab reads the manifest and translates each container itself. Pure functions: the manifest and the node's
facts in, argv lists out. Honoured fields, all others are ignored:

- pod: `hostNetwork` (→ `--network ns:<node netns>` and `--uts=host`), `initContainers` (run to completion
  first, in order), `containers`, `volumes` (`hostPath`, `configMap`, `emptyDir`), `serviceAccountName`
  (the token and CA mounted where the in-cluster config looks, plus KUBERNETES_SERVICE_HOST/PORT, as the
  kubelet does), `terminationGracePeriodSeconds` (→ `--stop-timeout`);
- container: `image`, `imagePullPolicy` (IfNotPresent → `--pull=missing`, Never → never, Always → always),
  `command` (→ `--entrypoint`), `args`, `env` (`value`, and `valueFrom.fieldRef` for `spec.nodeName`),
  `volumeMounts` (`readOnly` → `:ro`), `securityContext` (`runAsUser` → `--user`, `capabilities.drop`/`add`,
  `readOnlyRootFilesystem` → `--read-only`, `allowPrivilegeEscalation: false` → no-new-privileges,
  `privileged: true` → `--privileged`), `livenessProbe`/`readinessProbe` `httpGet` (returned as data: the
  caller performs the GETs, as the kubelet does).

Not honoured: `resources`, `ports` (meaningless with hostNetwork), `tolerations`, `nodeSelector`,
`priorityClassName`, the pod's `seccompProfile: RuntimeDefault` (podman applies its default profile anyway),
probe timings (the caller polls).

Host paths are relocated under the node's root directory (`/opt/cni/bin` → `<node root>/opt/cni/bin`): the
lab's nodes share one machine's filesystem. An env value that names a relocated hostPath is relocated too,
since the manifest requires such values (CNI_BIN_DIR_HOST) to equal the volume's hostPath.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
AGENT_CONFIG_KEY = "config.yaml"  # the ConfigMap key holding the agent's config file
PULL_POLICIES = {"IfNotPresent": "missing", "Never": "never", "Always": "always"}


class TemplateError(ValueError):
    """The manifest uses something the translation does not support; the message names the field."""


@dataclass(frozen=True)
class HttpProbe:
    kind: str  # "liveness" or "readiness"
    path: str
    port: int


@dataclass(frozen=True)
class NodeFacts:
    """What the kubelet of one lab node knows when it starts the pod."""

    name: str
    netns_path: str
    root: Path  # host paths of hostPath volumes live under here
    config_maps: Path  # <config_maps>/<configMap name>/ holds one file per data key
    service_account: Path  # holds `token` and `ca.crt`
    api_host: str
    api_port: int


@dataclass(frozen=True)
class ContainerRun:
    name: str
    init: bool
    argv: tuple[str, ...]  # podman arguments after "podman"
    probes: tuple[HttpProbe, ...]


# The namespace manifests/00-namespace.yaml creates, where the DaemonSet's pods run.
POD_NAMESPACE = "bgpnet-system"


def daemonset_pod_spec(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod spec of the (only) DaemonSet among `documents`."""
    daemonsets = [d for d in documents if d and d.get("kind") == "DaemonSet"]
    if len(daemonsets) != 1:
        raise TemplateError(f"expected one DaemonSet, found {len(daemonsets)}")
    return daemonsets[0]["spec"]["template"]["spec"]


BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
DECIMAL_SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9}


def tmpfs_size(quantity: str, volume: str = "") -> int:
    """A Kubernetes quantity ("16Mi", "500M", "1048576") as bytes, for tmpfs's size= option."""
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    suffix = match.group(2) if match else "?"
    factor = BINARY_SUFFIXES.get(suffix) or DECIMAL_SUFFIXES.get(suffix)
    if match is None or factor is None:
        raise TemplateError(f"volume {volume!r}: sizeLimit {quantity!r} is not a quantity this lab understands")
    return int(match.group(1)) * factor


def host_path(node: NodeFacts, path: str) -> Path:
    return node.root / path.lstrip("/")


def _volume_sources(spec: Mapping[str, Any], node: NodeFacts) -> dict[str, tuple[str, str]]:
    """volume name -> ("bind", host path) or ("tmpfs", options)."""
    out: dict[str, tuple[str, str]] = {}
    for volume in spec.get("volumes", []):
        name = volume["name"]
        if "hostPath" in volume:
            out[name] = ("bind", str(host_path(node, volume["hostPath"]["path"])))
        elif "configMap" in volume:
            out[name] = ("bind", str(node.config_maps / volume["configMap"]["name"]))
        elif "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            out[name] = ("tmpfs", f"size={tmpfs_size(size, name)}" if size else "")
        else:
            raise TemplateError(f"volume {name!r}: only hostPath, configMap and emptyDir are supported")
    return out


def host_path_dirs(spec: Mapping[str, Any], node: NodeFacts) -> list[Path]:
    """The node directories to create before the pod starts (every hostPath is DirectoryOrCreate here)."""
    return [host_path(node, v["hostPath"]["path"]) for v in spec.get("volumes", []) if "hostPath" in v]


def _env(container: Mapping[str, Any], spec: Mapping[str, Any], node: NodeFacts) -> list[str]:
    relocated = {v["hostPath"]["path"]: str(host_path(node, v["hostPath"]["path"]))
                 for v in spec.get("volumes", []) if "hostPath" in v}
    out = []
    for item in container.get("env", []):
        if "value" in item:
            value = relocated.get(item["value"], item["value"])
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            value = node.name
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            value = POD_NAMESPACE
        else:
            raise TemplateError(f"env {item['name']!r}: only value and fieldRef spec.nodeName or metadata.namespace "
                                "are supported")
        out += ["--env", f"{item['name']}={value}"]
    if spec.get("serviceAccountName"):
        out += ["--env", f"KUBERNETES_SERVICE_HOST={node.api_host}",
                "--env", f"KUBERNETES_SERVICE_PORT={node.api_port}"]
    return out


def _security(context: Mapping[str, Any]) -> list[str]:
    out = []
    if "runAsUser" in context:
        out += ["--user", str(context["runAsUser"])]
    if context.get("privileged"):
        out.append("--privileged")
    capabilities = context.get("capabilities", {})
    out += [f"--cap-drop={c.lower()}" for c in capabilities.get("drop", [])]
    out += [f"--cap-add={c}" for c in capabilities.get("add", [])]
    if context.get("readOnlyRootFilesystem"):
        out.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        out += ["--security-opt", "no-new-privileges"]
    return out


def _probes(container: Mapping[str, Any]) -> tuple[HttpProbe, ...]:
    out = []
    for kind in ("liveness", "readiness"):
        probe = container.get(f"{kind}Probe")
        if probe is None:
            continue
        if "httpGet" not in probe:
            raise TemplateError(f"{container['name']}: {kind}Probe: only httpGet is supported")
        out.append(HttpProbe(kind, probe["httpGet"].get("path", "/"), int(probe["httpGet"]["port"])))
    return tuple(out)


def container_run(container: Mapping[str, Any], spec: Mapping[str, Any], node: NodeFacts, *, init: bool,
                  pod_name: str) -> ContainerRun:
    if not spec.get("hostNetwork"):
        raise TemplateError("only hostNetwork pods run in a lab node's network namespace")
    name = f"{pod_name}-{container['name']}"
    # hostNetwork pods also share the node's UTS namespace: the node's hostname, which its /etc/hosts resolves.
    # (A random container hostname would send ExaBGP's lookup of its own name to DNS, which a lab node cannot
    # reach: seconds of timeouts at every start.)
    argv = ["run", "--name", name, "--network", f"ns:{node.netns_path}", "--uts=host",
            f"--pull={PULL_POLICIES[container.get('imagePullPolicy', 'IfNotPresent')]}"]
    argv += ["--rm"] if init else ["--detach"]
    argv += _env(container, spec, node)
    argv += _security(container.get("securityContext", {}))
    sources = _volume_sources(spec, node)
    for mount in container.get("volumeMounts", []):
        kind, source = sources[mount["name"]]
        if kind == "tmpfs":
            argv += ["--tmpfs", f"{mount['mountPath']}:{source}" if source else mount["mountPath"]]
        else:
            argv += ["--volume", f"{source}:{mount['mountPath']}" + (":ro" if mount.get("readOnly") else "")]
    if spec.get("serviceAccountName"):
        argv += ["--volume", f"{node.service_account}:{SERVICE_ACCOUNT_DIR}:ro"]
    if not init and "terminationGracePeriodSeconds" in spec:
        argv += ["--stop-timeout", str(spec["terminationGracePeriodSeconds"])]
    if "command" in container:
        # The JSON form replaces the image's whole ENTRYPOINT, and `args` then replace its CMD, as in Kubernetes.
        argv += ["--entrypoint", json.dumps(container["command"])]
    argv += [container["image"], *container.get("args", [])]
    return ContainerRun(container["name"], init, tuple(argv), _probes(container))


def pod_runs(spec: Mapping[str, Any], node: NodeFacts, pod_name: str) -> list[ContainerRun]:
    """Every container of the pod in start order: init containers first, then the others."""
    return [*(container_run(c, spec, node, init=True, pod_name=pod_name) for c in spec.get("initContainers", [])),
            *(container_run(c, spec, node, init=False, pod_name=pod_name) for c in spec["containers"])]


def relocated_config(text: str, node: NodeFacts) -> str:
    """The agent config with the plugin's host paths (cni.dataDir, cni.logFile) under the node's root.

    The CNI plugin uses them on the node, outside the pod, so they are host paths like a hostPath volume's;
    relocated, the lab's nodes never share (or touch the machine's) IPAM directory."""
    config = yaml.safe_load(text)
    cni = config.setdefault("cni", {})
    cni["dataDir"] = str(host_path(node, cni.get("dataDir", "/var/lib/cni/bgpnet")))
    if cni.get("logFile"):
        cni["logFile"] = str(host_path(node, cni["logFile"]))
    return yaml.safe_dump(config, sort_keys=False)


def config_map_files(documents: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """configMap name -> {key: content}, for every ConfigMap among `documents`."""
    return {d["metadata"]["name"]: dict(d.get("data", {})) for d in documents if d and d.get("kind") == "ConfigMap"}
