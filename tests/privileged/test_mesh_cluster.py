"""Three nodes in full mesh with real agents, real ExaBGP and real kernel routes, pods wired by bgpnet-cni.

One cluster is built per test module (it takes a few seconds) and the tests run in order against it: each
starts from the state the previous one left, exactly as an operator would see it evolve.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from integration.cluster import Cluster, three_node_cluster, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]
RESTART_TIME = 5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # A short graceful-restart time keeps the SIGKILL test quick; the default (30 s) is the same code path.
    with three_node_cluster(tmp_path_factory.mktemp("mesh"),
                            extra_config={"gracefulRestart": {"enabled": True, "restartTime": RESTART_TIME}}) as c:
        yield c


def expected_routes(cluster: Cluster, node) -> set[str]:
    """Every other node whose agent should be serving (a crashed agent still counts: it must show up)."""
    return {n.pod_cidr for n in cluster.nodes.values() if n is not node and n.agent is not None}


def converged(cluster: Cluster) -> bool:
    for node in cluster.nodes.values():
        if node.agent is not None and node.agent.poll() is not None:
            raise AssertionError(f"{node.name}'s agent exited ({node.agent.returncode}):\n"
                                 f"{cluster.agent_log(node)[-3000:]}")
    return all(set(n.bgp_routes()) == expected_routes(cluster, n) for n in cluster.nodes.values()
               if n.agent is not None)


def test_every_node_learns_every_other_nodes_cidr(cluster):
    wait_for(lambda: converged(cluster), 60, what="full mesh convergence")
    for node in cluster.nodes.values():
        assert len(node.bgp_routes()) == 2
        for prefix, line in node.bgp_routes().items():
            owner = next(n for n in cluster.nodes.values() if n.pod_cidr == prefix)
            assert f"via {owner.ip} dev eth0" in line, line


def test_pods_reach_pods_on_other_nodes_by_their_own_address(cluster):
    for node in cluster.nodes.values():
        cluster.add_pod(node)
        cluster.add_pod(node)
    pods = cluster.all_pods()
    failures = [(a.name, b.name) for a in pods for b in pods if a is not b and not cluster.ping(a, b.ip)]
    assert failures == []


def test_no_nat_on_the_wire(cluster):
    n1, n2 = cluster.nodes["node1"], cluster.nodes["node2"]
    src, dst = n1.pods[0], n2.pods[0]
    capture = subprocess.Popen(n2.ns.argv(["tcpdump", "-ni", "eth0", "-c", "1", "-l", "icmp and dst host " + dst.ip]),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cluster.group.track(capture)
    time.sleep(0.5)  # tcpdump needs a moment to attach its socket filter
    assert cluster.ping(src, dst.ip, count=3)
    out, _ = capture.communicate(timeout=10)
    assert f"IP {src.ip} > {dst.ip}: ICMP echo request" in out, out


def test_killed_agent_routes_are_removed_everywhere(cluster, record_property):
    n3 = cluster.nodes["node3"]
    started = time.monotonic()
    cluster.kill_agent(n3, signal.SIGKILL)
    # Its peers are graceful restart helpers: they keep node3's routes for its Restart Time (a killed agent may
    # be restarting, and its pods still forward), then withdraw them.
    wait_for(lambda: all(n3.pod_cidr not in n.bgp_routes() for n in cluster.nodes.values() if n is not n3),
             RESTART_TIME + 30, interval=0.005, what="node3's routes to be withdrawn")
    elapsed = time.monotonic() - started
    assert elapsed >= RESTART_TIME - 0.5  # held for the restart time, not dropped at the TCP close
    record_property("kill_to_removed_s", elapsed)
    print(f"\nMEASURED agent SIGKILL -> routes removed on all other nodes: {elapsed * 1000:.0f} ms "
          f"(graceful-restart time {RESTART_TIME} s)")


def test_restarted_agent_converges_without_duplicates_or_stale_routes(cluster):
    n3 = cluster.nodes["node3"]
    cluster.start_agent(n3)
    wait_for(lambda: converged(cluster), 60, what="convergence after restart")
    for node in cluster.nodes.values():
        out = node.ns.run("ip", "-4", "route", "show", "proto", "179").stdout.splitlines()
        assert len(out) == len(set(out)) == len(expected_routes(cluster, node))
    pods = cluster.all_pods()
    assert all(cluster.ping(a, b.ip) for a in pods for b in pods if a is not b)


def test_deleted_node_routes_are_gone_everywhere(cluster):
    n3 = cluster.nodes["node3"]
    cluster.delete_node(n3)
    # node3's agent keeps running, but the others drop it as a peer at once, without waiting for a hold timer.
    wait_for(lambda: all(n3.pod_cidr not in n.bgp_routes() for n in cluster.nodes.values() if n is not n3),
             30, interval=0.005, what="deleted node's routes to go")
    # The node is gone from the cluster: stop its agent so it is no longer expected to converge.
    cluster.kill_agent(n3, signal.SIGTERM)


def test_added_node_becomes_reachable(cluster, record_property):
    n4 = cluster.add_node(4, register=False)
    started = time.monotonic()
    cluster.register_node(n4)
    others = [cluster.nodes["node1"], cluster.nodes["node2"]]
    wait_for(lambda: all(n4.pod_cidr in n.bgp_routes() for n in others), 60, interval=0.005,
             what="node4's CIDR on the other nodes")
    elapsed = time.monotonic() - started
    record_property("node_add_to_installed_s", elapsed)
    print(f"\nMEASURED Node added -> its CIDR installed on all other nodes: {elapsed * 1000:.0f} ms")
    wait_for(lambda: converged(cluster), 60, what="node4 to learn the others' CIDRs too")
    pod = cluster.add_pod(n4)
    assert all(cluster.ping(p, pod.ip) for n in others for p in n.pods)
