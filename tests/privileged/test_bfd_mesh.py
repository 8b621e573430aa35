"""BFD between mesh nodes: three real agents on one segment, each running BFD (300 ms x 3) with the others.

A node that goes silent (SIGSTOP of its agent, ExaBGP and BFD process: no TCP close, no NOTIFICATION) is dropped
by the others in about the detection time instead of the 9 s hold time; a node whose agent is stopped cleanly
(SIGTERM, as in a DaemonSet rollout) tells the others AdminDown, which bgpnet does not take for a failure
(RFC 5882 §3.2), so they keep its routes under graceful restart and pod traffic is not interrupted.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from integration.cluster import _descendants, three_node_cluster, wait_for
from tests.privileged.faults_support import Stream, agent_status

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

HOLD_S = 9.0
BFD = {"bfd": {"enabled": True, "minRx": 300, "minTx": 300, "multiplier": 3},
       "gracefulRestart": {"enabled": True, "restartTime": 30}}


@pytest.fixture
def cluster(tmp_path):
    with three_node_cluster(tmp_path, extra_config=BFD) as c:
        wait_for(lambda: converged(c), 60, what="full mesh")
        wait_for(lambda: all(bfd_up(c, n) for n in c.nodes.values()), 30, what="BFD Up between every pair")
        yield c


def converged(cluster) -> bool:
    for node in cluster.nodes.values():
        if node.agent is not None and node.agent.poll() is not None:
            raise AssertionError(f"{node.name}'s agent exited:\n{cluster.agent_log(node)[-3000:]}")
    return all(set(n.bgp_routes()) == {m.pod_cidr for m in cluster.nodes.values() if m is not n}
               for n in cluster.nodes.values())


def bfd_up(cluster, node) -> bool:
    sessions = agent_status(node).get("bfd", [])
    return len(sessions) == len(cluster.nodes) - 1 and all(s["state"] == "Up" for s in sessions)


def test_a_silent_node_is_dropped_by_its_mesh_peers_in_the_detection_time(cluster):
    n1, n2, n3 = (cluster.nodes[f"node{i}"] for i in (1, 2, 3))
    assert n3.agent is not None
    pids = [n3.agent.pid, *_descendants(n3.agent.pid)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    start = time.monotonic()
    try:
        wait_for(lambda: n3.pod_cidr not in n1.bgp_routes() and n3.pod_cidr not in n2.bgp_routes(), HOLD_S - 1,
                 interval=0.01, what="node3's routes gone from nodes 1 and 2")
        took = time.monotonic() - start
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    print(f"\nMEASURED mesh node frozen, BFD 300 ms x 3: its peers dropped its pod CIDR after {took * 1000:.0f} ms "
          f"(hold time {HOLD_S:.0f} s)")
    held = {s["peer"]: s for s in agent_status(n1)["bfd"]}[n3.ip]
    assert held["holding_bgp_down"] or held["state"] == "Up"  # or already back
    wait_for(lambda: converged(cluster) and bfd_up(cluster, n1), 60, what="node3 back in the mesh")


def test_a_clean_agent_restart_keeps_the_routes_at_its_peers(cluster, tmp_path):
    n1, n3 = cluster.nodes["node1"], cluster.nodes["node3"]
    cluster.add_pod(n1)
    cluster.add_pod(n3)
    wait_for(lambda: cluster.ping(n1.pods[0], n3.pods[0].ip), 30, what="pod traffic node1 -> node3")
    stream = Stream(cluster, n1.pods[0], n3.pods[0], tmp_path, rate=500)
    time.sleep(0.5)
    assert n3.agent is not None
    cluster.group.stop_process(n3.agent, timeout=20)
    n3.agent = None
    time.sleep(3)  # three times the detection time: a silent BFD would have been declared down by now
    session = {s["peer"]: s for s in agent_status(n1)["bfd"]}[n3.ip]
    assert session["state"] == "Down" and not session["holding_bgp_down"]  # AdminDown: not a failure
    assert n3.pod_cidr in n1.bgp_routes()  # kept under graceful restart
    cluster.start_agent(n3)
    wait_for(lambda: converged(cluster) and bfd_up(cluster, n1) and bfd_up(cluster, n3), 60,
             what="node3's sessions back")
    result = stream.finish()
    print(f"\nMEASURED mesh agent restart with BFD: 500 pps pod stream sent={result.sent} lost={result.lost}")
    assert result.received > 0 and result.lost == 0
    assert "remote=AdminDown" in cluster.agent_log(n1)
