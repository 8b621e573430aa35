"""The test harness's view of a bgpnet cluster in network namespaces.

The cluster builder is shipped code (`bgpnet.lab.cluster`, also behind `bgpnet lab`), so tests and the lab
build exactly the same thing; this module only keeps the names the tests import.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bgpnet.lab.cluster import Cluster, ClusterNode, Pod, Tor, wait_for
from bgpnet.lab.processes import descendants as _descendants
from bgpnet.lab.topology import API_IP, SEGMENT

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

__all__ = ["API_IP", "ROOT", "SEGMENT", "VENV_BIN", "Cluster", "ClusterNode", "Pod", "Tor", "_descendants",
           "wait_for"]
