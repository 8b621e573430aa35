"""The Kubernetes API away for 60 s, and malformed Node objects: forwarding never changes, the agent keeps
serving, and what changed meanwhile is applied once the API is back (full re-list).

The API stand-in is really stopped (its process ends); a new one comes back on the same address with the
cluster's state as it is now — one Node deleted meanwhile, as if another client had changed it while this
node could not watch. Three nodes in full mesh, real agents, ExaBGP, kernel routes and bgpnet-cni pods.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from bgpnet.lab.cluster import STANDIN_MODULE, source_root
from integration.cluster import three_node_cluster, wait_for
from tests.privileged.faults_support import Stream, agent_status

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

OUTAGE_S = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with three_node_cluster(tmp_path_factory.mktemp("api")) as c:
        yield c


def routes(cluster) -> dict[str, dict[str, str]]:
    return {n.name: n.bgp_routes() for n in cluster.nodes.values()}


def test_api_away_for_60s_forwarding_unchanged_and_changes_applied_when_back(cluster, tmp_path,
                                                                             record_property):
    n1, n2, n3 = (cluster.nodes[f"node{i}"] for i in (1, 2, 3))
    wait_for(lambda: all(len(n.bgp_routes()) == 2 for n in (n1, n2, n3)), 60, what="convergence")
    for node in (n1, n2):
        cluster.add_pod(node)
    before = routes(cluster)
    stream = Stream(cluster, n1.pods[0], n2.pods[0], tmp_path, rate=200)

    cluster.group.stop_process(cluster.api_proc)
    stopped = time.monotonic()
    # Meanwhile node3 is deleted: the new API state lacks it (its agent keeps running until it is back).
    nodes = [cluster.node_object(n) for n in (n1, n2)]
    nodes_file = tmp_path / "nodes.json"
    nodes_file.write_text(json.dumps({"items": nodes}))
    changed_during = []
    while time.monotonic() - stopped < OUTAGE_S:
        now = routes(cluster)
        if {k: v for k, v in now.items() if k != "node3"} != {k: v for k, v in before.items() if k != "node3"}:
            changed_during.append(now)
        time.sleep(1)
    reachable = [bool(agent_status(n).get("kube", {}).get("reachable")) for n in (n1, n2)]

    host, port = cluster.api_url.removeprefix("http://").rsplit(":", 1)
    log = open(tmp_path / "kube-api-2.log", "w")
    cluster.api_proc = cluster.segment.spawn(
        [sys.executable, "-m", STANDIN_MODULE, "--listen", f"{host}:{port}", "--nodes-file", str(nodes_file)],
        cwd=str(source_root()), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    back = time.monotonic()
    wait_for(lambda: all(n3.pod_cidr not in n.bgp_routes() for n in (n1, n2)), 90, interval=0.05,
             what="node3's deletion to be applied after the API came back")
    applied = time.monotonic() - back
    result = stream.finish()
    record_property("api_outage_change_applied_s", applied)
    record_property("api_outage_packets_lost", result.lost)
    print(f"\nMEASURED API stand-in stopped {OUTAGE_S}s: routes changed during outage {len(changed_during)} times, "
          f"200 pps stream sent={result.sent} lost={result.lost}; Node deleted meanwhile applied "
          f"{applied:.2f}s after the API returned")
    cluster.kill_agent(n3, signal.SIGTERM)
    assert changed_during == []
    assert reachable == [False, False]  # the agents did notice the outage
    assert result.lost == 0 and result.sent > OUTAGE_S * 150
    assert set(n1.bgp_routes()) == {n2.pod_cidr} and set(n2.bgp_routes()) == {n1.pod_cidr}


def test_malformed_nodes_are_logged_counted_and_the_agent_keeps_serving(cluster):
    n1, n2 = cluster.nodes["node1"], cluster.nodes["node2"]
    wait_for(lambda: agent_status(n1).get("kube", {}).get("reachable"), 60, what="agent to reach the API")
    before = routes(cluster)
    bad = [
        {"metadata": {"name": "bad-cidr"}, "spec": {"podCIDR": "10.244.99.0/33", "podCIDRs": ["10.244.99.0/33"]},
         "status": {"addresses": [{"type": "InternalIP", "address": "172.31.0.99"}]}},
        {"metadata": {"name": "bad-address"}, "spec": {"podCIDRs": ["10.244.98.0/24"]},
         "status": {"addresses": [{"type": "InternalIP", "address": "not-an-ip"}]}},
        {"metadata": {"name": "bad-asn", "annotations": {"bgpnet.io/asn": "banana"}},
         "spec": {"podCIDRs": ["10.244.97.0/24"]},
         "status": {"addresses": [{"type": "InternalIP", "address": "172.31.0.97"}]}},
    ]
    for obj in bad:
        cluster.call(cluster.api.create_node, {"apiVersion": "v1", "kind": "Node", **obj})
    wait_for(lambda: agent_status(n1).get("kube", {}).get("bad_nodes", 0) >= 2, 30, what="bad nodes counted")
    time.sleep(1)
    assert routes(cluster)["node1"] == before["node1"] and routes(cluster)["node2"] == before["node2"]
    assert cluster.ping(n1.pods[0], n2.pods[0].ip)
    log = cluster.agent_log(n1)
    assert "bad-cidr" in log and "bad-address" in log
    status = agent_status(n1)
    print(f"\nMEASURED malformed Nodes: bad_nodes={status['kube']['bad_nodes']} on node1, routes unchanged, "
          f"pods reachable; reconcile failures={status.get('reconcile_failures')}")
    assert status.get("reconcile_failures") == 0
