"""Runs the DaemonSet's pod on a lab node with podman, doing the kubelet's part around it.

Before the pod: the node's hostPath directories, the ConfigMap's files and the service-account token and CA
(bgpnet.lab.pod_template decides the rest). Then the init containers run to completion in order, the others
start detached, and `probe` performs a probe's httpGet from inside the node's network namespace (the pod is
hostNetwork, so its ports are the node's).

The agent's config file from the ConfigMap is written with its host paths relocated (see `relocated_config`).
"""

from __future__ import annotations

import http.client
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bgpnet.lab.netns import entered
from bgpnet.lab.pod_template import (
    AGENT_CONFIG_KEY,
    ContainerRun,
    HttpProbe,
    NodeFacts,
    host_path_dirs,
    pod_runs,
    relocated_config,
)
from bgpnet.lab.podman import Podman, PodmanError


def prepare_node(spec: Mapping[str, Any], node: NodeFacts, config_maps: Mapping[str, Mapping[str, str]],
                 token: str, ca_pem: bytes) -> None:
    """What exists on a node before the kubelet starts the pod: hostPath dirs, volumes' files, credentials."""
    for directory in host_path_dirs(spec, node):
        directory.mkdir(parents=True, exist_ok=True)
    for name, data in config_maps.items():
        target = node.config_maps / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for key, content in data.items():
            (target / key).write_text(relocated_config(content, node) if key == AGENT_CONFIG_KEY else content)
    node.service_account.mkdir(parents=True, exist_ok=True)
    (node.service_account / "token").write_text(token)
    (node.service_account / "ca.crt").write_bytes(ca_pem)


@dataclass
class RunningPod:
    name: str
    node: NodeFacts
    init_output: dict[str, str]  # init container name -> its stdout
    containers: dict[str, ContainerRun]  # long-running container name -> how it was started

    def container_name(self, container: str) -> str:
        return f"{self.name}-{container}"


def start_pod(podman: Podman, spec: Mapping[str, Any], node: NodeFacts, pod_name: str) -> RunningPod:
    """Init containers to completion (a failure raises with its output), then the others detached."""
    pod = RunningPod(pod_name, node, {}, {})
    for run in pod_runs(spec, node, pod_name):
        if run.init:
            pod.init_output[run.name] = podman(*run.argv, timeout=300).stdout
        else:
            podman(*run.argv, timeout=120)
            pod.containers[run.name] = run
    return pod


def stop_pod(podman: Podman, pod: RunningPod) -> None:
    for name in pod.containers:
        podman("rm", "--force", "--time", "10", pod.container_name(name), check=False)


def probe(node: NodeFacts, check: HttpProbe, timeout: float = 5) -> int | None:
    """The HTTP status of the probe's GET on the node's loopback (None: nothing answered), as the kubelet sees
    it for a hostNetwork pod."""
    with entered(node.netns_path):
        conn = http.client.HTTPConnection("127.0.0.1", check.port, timeout=timeout)
        try:
            conn.request("GET", check.path)
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()


def exec_in(podman: Podman, pod: RunningPod, container: str, *argv: str) -> str:
    proc = podman("exec", pod.container_name(container), *argv, check=False)
    if proc.returncode != 0:
        raise PodmanError(f"{container}: {' '.join(argv)} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc.stdout


def logs(podman: Podman, pod: RunningPod, container: str) -> str:
    proc = podman("logs", pod.container_name(container), check=False)
    return proc.stdout + proc.stderr
