"""Lab nodes whose agent is the DaemonSet's pod, run from bgpnet's image with podman.

The pod template and the ConfigMap are read from the checkout's manifests/ (nothing is copied by hand), the
image reference in the template may be overridden (as kustomize's `images:` would), and each node gets what a
kubelet gives it: its hostPath directories (under `<node workdir>/root`), the ConfigMap's files, the
service-account token and CA of the lab's HTTPS API stand-in. Pods on such a node are wired by the plugin the
pod's init container installed in the node's CNI bin dir.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bgpnet.lab.cluster import Cluster, ClusterNode, LabError, source_root
from bgpnet.lab.image import BASE_IMAGE, base_tarball, build_image, host_recipe, import_base
from bgpnet.lab.pod_runner import RunningPod, prepare_node, start_pod
from bgpnet.lab.pod_template import NodeFacts, config_map_files, daemonset_pod_spec, host_path
from bgpnet.lab.podman import Podman
from bgpnet.lab.topology import API_IP

DAEMONSET_MANIFEST = "30-daemonset.yaml"
CONFIGMAP_MANIFEST = "20-configmap.yaml"
CNI_BIN_VOLUME = "cni-bin"
CNI_NET_VOLUME = "cni-net-dir"


def manifest(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((source_root() / "manifests" / name).read_text()))


def pod_spec(image: str | None = None) -> dict[str, Any]:
    """The DaemonSet's pod spec; with `image`, every container runs that image instead of the manifest's."""
    spec = daemonset_pod_spec(manifest(DAEMONSET_MANIFEST))
    if image is None:
        return spec
    return {**spec, **{key: [{**c, "image": image} for c in spec.get(key, [])]
                       for key in ("initContainers", "containers")}}


def manifest_image() -> str:
    (ref,) = {c["image"] for c in pod_spec()["containers"]}
    return ref


def ensure_image(podman: Podman, ref: str, progress: Callable[[str], None] = lambda _m: None) -> None:
    """`ref` in podman's storage, built from the checkout's Dockerfile on the local Debian base if missing."""
    if podman.has_image(ref):
        return
    progress(f"image {ref} not in {podman.root}: building it from {source_root()}/Dockerfile "
             f"on a local Debian 12 base (a few minutes the first time)")
    import_base(podman, base_tarball(source_root() / ".cache" / "image", host_recipe()))
    built = build_image(podman, source_root(), ref, base=BASE_IMAGE)
    progress(f"image {ref} built in {built.build_seconds:.0f}s, {built.size_bytes / 1e6:.0f} MB")


def node_facts(cluster: Cluster, node: ClusterNode) -> NodeFacts:
    if cluster.credentials is None:
        raise LabError("agents from the image use the in-cluster config: build the cluster with in_cluster=True")
    port = int(cluster.api_url.rsplit(":", 1)[1])
    return NodeFacts(name=node.name, netns_path=node.ns.path, root=node.workdir / "root",
                     config_maps=node.workdir / "configmaps", service_account=node.workdir / "serviceaccount",
                     api_host=API_IP, api_port=port)


def _volume_host_path(spec: dict[str, Any], facts: NodeFacts, volume: str) -> Path:
    (path,) = [v["hostPath"]["path"] for v in spec["volumes"] if v["name"] == volume]
    return host_path(facts, path)


def start_agent_pod(cluster: Cluster, node: ClusterNode, podman: Podman, spec: dict[str, Any],
                    pod_name: str) -> RunningPod:
    """The DaemonSet's pod on `node`: init container to completion, then the agent, detached."""
    facts = node_facts(cluster, node)
    assert cluster.credentials is not None
    prepare_node(spec, facts, config_map_files(manifest(CONFIGMAP_MANIFEST)), cluster.credentials.token,
                 cluster.credentials.cert.read_bytes())
    return start_pod(podman, spec, facts, pod_name)


def installed_plugin(cluster: Cluster, node: ClusterNode, spec: dict[str, Any]) -> Path:
    return _volume_host_path(spec, node_facts(cluster, node), CNI_BIN_VOLUME) / "bgpnet-cni"


def cni_conf_dir(cluster: Cluster, node: ClusterNode, spec: dict[str, Any]) -> Path:
    return _volume_host_path(spec, node_facts(cluster, node), CNI_NET_VOLUME)
