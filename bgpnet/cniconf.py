"""The node's CNI network config: rendered from its pod CIDRs (pure) and written atomically.

The container runtime reads every file in the CNI config dir whenever it sets up a pod. A half-written file
would fail pod start-up, so the conflist is written to a temporary file in the same directory, fsynced and
renamed over the old one: a reader sees the old or the new config, never a mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

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
    doc = {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": [plugin]}
    return json.dumps(doc, indent=2) + "\n"


def write_atomically(path: Path, content: str) -> bool:
    """Replace `path` with `content` unless it already holds exactly that; returns whether it wrote."""
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    # The rename is durable only once the directory entry is: fsync the directory too.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def write_conflist(conf_dir: Path, pod_cidrs: Sequence[IPNetwork], settings: CniSettings) -> bool:
    return write_atomically(conf_dir / CONFLIST_NAME, render_conflist(pod_cidrs, settings))
