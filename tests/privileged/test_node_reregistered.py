"""A Node deleted and registered again (kubectl delete node, then the kubelet re-registers it with a new pod
CIDR from the controller manager) rejoins the mesh without restarting anything: real agents, ExaBGP, kernel.

Found on a real cluster: the agents logged `ExaBGP rejected a command` right after a reload, the other node
answered Cease / Peer De-configured, and the session stayed in Connect until the agent pod was deleted.
"""

from __future__ import annotations

import pytest

from integration.cluster import three_node_cluster, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def routes_everywhere(cluster) -> bool:
    for node in cluster.nodes.values():
        expected = {n.pod_cidr for n in cluster.nodes.values() if n is not node}
        if set(node.bgp_routes()) != expected:
            return False
    return True


@pytest.mark.parametrize("which", ["node1", "node3"])  # the lower address initiates the mesh session
def test_a_node_deleted_and_registered_again_with_a_new_pod_cidr_rejoins(tmp_path, which):
    with three_node_cluster(tmp_path) as cluster:
        wait_for(lambda: routes_everywhere(cluster), 60, what="mesh convergence")
        node = cluster.nodes[which]
        agents = {n.name: n.agent.pid for n in cluster.nodes.values()}
        cluster.delete_node(node)
        others = [n for n in cluster.nodes.values() if n is not node]
        wait_for(lambda: all(node.pod_cidr not in n.bgp_routes() for n in others), 30,
                 what="the deleted Node's routes gone")
        node.pod_cidr = f"10.244.{100 + node.index}.0/24"  # what the controller manager hands out next
        cluster.register_node(node)
        wait_for(lambda: routes_everywhere(cluster), 60,
                 what=f"{which} back in the mesh:\n" + "\n".join(
                     f"{n.name}: {sorted(n.bgp_routes())}" for n in cluster.nodes.values()))
        for n in cluster.nodes.values():
            assert n.agent.pid == agents[n.name] and n.agent.poll() is None
            assert "ExaBGP rejected a command" not in cluster.agent_log(n), cluster.agent_log(n)[-3000:]
        pods = [cluster.add_pod(n) for n in cluster.nodes.values()]
        assert [(a.name, b.name) for a in pods for b in pods if a is not b and not cluster.ping(a, b.ip)] == []
