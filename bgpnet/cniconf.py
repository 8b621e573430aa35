"""The node's CNI network config: rendered from its pod CIDRs (pure) and written atomically.

The container runtime reads every file in the CNI config dir whenever it sets up a pod. A half-written file
would fail pod start-up, so the conflist is written to a temporary file in the same directory, fsynced and
renamed over the old one: a reader sees the old or the new config, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bgpnet.atomic_file import write_atomically
from bgpnet.config import CniSettings
from bgpnet.model import IPNetwork

CONFLIST_NAME = "10-bgpnet.conflist"
NETWORK_NAME = "bgpnet"


def render_conflist(pod_cidrs: Sequence[IPNetwork], settings: CniSettings) -> str:
    plugin: dict[str, object] = {
        "type": "bgpnet-cni",
        "podCIDRs": [str(c) for c in pod_cidrs],
        "mtu": settings.mtu,
        "dataDir": settings.data_dir,
    }
    if settings.log_file:
        plugin["logFile"] = settings.log_file
    plugins: list[dict[str, object]] = [plugin]
    if settings.port_map:
        # hostPort: the runtime hands the pod's port mappings to plugins with this capability (kubelet passes
        # them as runtimeConfig.portMappings). snat: connections to a hostPort from the node itself or from a
        # pod on it (hairpin) work too, as with Calico's default conflist.
        plugins.append({"type": "portmap", "snat": True, "capabilities": {"portMappings": True}})
    if settings.bandwidth:
        # The kubernetes.io/ingress-bandwidth and egress-bandwidth pod annotations, as a tc filter on the
        # host side of the pod's veth.
        plugins.append({"type": "bandwidth", "capabilities": {"bandwidth": True}})
    doc = {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": plugins}
    return json.dumps(doc, indent=2) + "\n"


def write_conflist(conf_dir: Path, pod_cidrs: Sequence[IPNetwork], settings: CniSettings) -> bool:
    return write_atomically(conf_dir / CONFLIST_NAME, render_conflist(pod_cidrs, settings))
