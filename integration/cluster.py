"""The test harness's view of a bgpnet cluster in network namespaces.

The cluster builder is shipped code (`bgpnet.lab.cluster`, also behind `bgpnet lab`), so tests and the lab
build exactly the same thing; this module only keeps the names the tests import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from bgpnet.lab.cluster import Cluster, ClusterNode, Pod, Tor, wait_for
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.processes import descendants as _descendants
from bgpnet.lab.topology import API_IP, SEGMENT

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

__all__ = ["API_IP", "ROOT", "SEGMENT", "VENV_BIN", "Cluster", "ClusterNode", "Pod", "Tor", "_descendants",
           "three_node_cluster", "wait_for"]


@contextlib.contextmanager
def three_node_cluster(workdir: Path, **cluster_kwargs: object) -> Iterator[Cluster]:
    """The privileged tests' standard cluster: three nodes with running agents on one segment, torn down
    (namespaces, processes) when the block ends, also after a failure. Needs root."""
    if os.geteuid() != 0:
        raise AssertionError("privileged test needs root (run the README's test command with sudo)")
    group = NetnsGroup()
    try:
        cluster = Cluster(group, workdir, **cluster_kwargs)  # type: ignore[arg-type]
        for i in (1, 2, 3):
            cluster.add_node(i)
        yield cluster
    finally:
        group.close()
