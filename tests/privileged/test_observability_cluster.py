"""Observability against a real cluster in namespaces: metrics, health endpoints and `bgpnet status` follow
real events (sessions going down, rejected routes, a foreign route, a wedged loop, an ExaBGP crash, pods).

One 3-node full-mesh cluster per module; the tests run in order and each starts from the state the previous
one left. Every agent serves on its node's 0.0.0.0:9179 (the default), reached from inside the node's
namespace, as the kubelet's probes and `kubectl exec ... bgpnet status` reach it on a real node.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bgpnet.lab.netns import entered
from integration.cluster import VENV_BIN, Cluster, three_node_cluster, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

PORT = 9179


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with three_node_cluster(tmp_path_factory.mktemp("obs")) as c:
        yield c


def http_get(ns, path: str, port: int = PORT, host: str = "127.0.0.1") -> tuple[int, str]:
    with entered(ns.path):
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except urllib.error.URLError as exc:  # not serving (yet): connection refused
            return 0, str(exc.reason)


def scrape(node) -> str:
    code, body = http_get(node.ns, "/metrics")
    assert code == 200, body
    return body


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def metric(node, name: str, **labels: str) -> float | None:
    """The sample's value, or None when the sample is absent or the agent does not answer (yet)."""
    code, body = http_get(node.ns, "/metrics")
    return sample(body, name, **labels) if code == 200 else None


def status_json(cluster: Cluster, node) -> dict:
    out = node.ns.run(str(VENV_BIN / "bgpnet"), "status", "--json").stdout
    return json.loads(out)


def others(cluster: Cluster, node):
    return [n for n in cluster.nodes.values() if n is not node]


def test_metrics_follow_the_converged_mesh(cluster):
    node1 = cluster.nodes["node1"]
    for node in cluster.nodes.values():
        for peer in others(cluster, node):
            wait_for(lambda n=node, p=peer: metric(n, "bgpnet_bgp_session_up", peer=p.ip, peer_asn="64512") == 1,
                     60, what=f"{node.name}: session with {peer.name} up in metrics")
        wait_for(lambda n=node: metric(n, "bgpnet_kernel_routes", family="ipv4") == len(n.bgp_routes()) == 2,
                 30, what=f"{node.name}: kernel route gauge equals the kernel's proto-179 routes")
    text = scrape(node1)
    for peer in others(cluster, node1):
        assert sample(text, "bgpnet_bgp_prefixes_accepted", peer=peer.ip) == 1
        assert sample(text, "bgpnet_bgp_prefixes_advertised", peer=peer.ip) == 1
        assert sample(text, "bgpnet_bgp_session_state_changes_total", peer=peer.ip, state="established") == 1
    assert sample(text, "bgpnet_kube_api_reachable") == 1
    assert sample(text, "bgpnet_kube_nodes") == 3
    assert sample(text, "bgpnet_kube_node_relists_total") >= 1
    assert sample(text, "bgpnet_speaker_up") == 1 and sample(text, "bgpnet_speaker_restarts_total") == 0
    assert sample(text, "bgpnet_build_info", version="0.1.0") == 1
    assert sample(text, "bgpnet_route_sync_duration_seconds_count", kind="apply") >= 1
    for node in cluster.nodes.values():
        assert http_get(node.ns, "/healthz") == (200, "ok\n")
        wait_for(lambda n=node: http_get(n.ns, "/readyz")[0] == 200, 30, what=f"{node.name} ready")
    # The agent logs key=value by default, facts as fields.
    assert 'logger=bgpnet.agent msg="session up" peer=172.31.0.' in cluster.agent_log(node1)


def test_a_live_scrape_passes_promtool(cluster, record_property):
    node1 = cluster.nodes["node1"]
    text = scrape(node1)
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    timings = []
    with entered(node1.ns.path):
        for _ in range(30):
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=10) as response:
                response.read()
            timings.append(time.perf_counter() - started)
    record_property("scrape_median_ms", round(statistics.median(timings) * 1000, 2))
    record_property("scrape_bytes", len(text))


def test_status_matches_the_labs_sessions_and_routes(cluster):
    node1 = cluster.nodes["node1"]
    doc = status_json(cluster, node1)
    peers = {p["address"]: p for p in doc["peers"]}
    assert set(peers) == {n.ip for n in others(cluster, node1)}
    assert {p["state"] for p in peers.values()} == {"established"}
    assert {p["asn"] for p in peers.values()} == {cluster.asn}
    assert {p["description"] for p in peers.values()} == {"node2", "node3"}
    assert doc["announced"] == [node1.pod_cidr]
    assert doc["routes"]["installed"]["ipv4"] == len(node1.bgp_routes())
    assert doc["health"]["ready"] is True and doc["node"] == "node1"
    assert doc["speaker"]["pid"] in cluster.exabgp_pids(node1)

    table = node1.ns.run(str(VENV_BIN / "bgpnet"), "status").stdout
    for peer in others(cluster, node1):
        row = next(line for line in table.splitlines() if line.startswith(peer.ip))
        assert row.split()[1:3] == [str(cluster.asn), "Established"], row
        assert row.split()[-5:] == ["1", "1", "0", "0", peer.name], row  # in, out, rejected, malformed, description
    assert f"Announced: {node1.pod_cidr}" in table
    assert f"Installed routes: {len(node1.bgp_routes())} (IPv4 {len(node1.bgp_routes())}, IPv6 0)" in table
    assert "ready" in table.splitlines()[0] and "Last errors: none" in table


def test_status_without_an_agent_says_so(cluster):
    proc = cluster.segment.run(str(VENV_BIN / "bgpnet"), "status", check=False)
    assert proc.returncode == 1 and "no bgpnet agent answered at http://127.0.0.1:9179/status" in proc.stderr


def test_a_prometheus_server_scrapes_the_agents(cluster, tmp_path):
    targets = [f"{n.ip}:{PORT}" for n in cluster.nodes.values()]
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "bgpnet", "static_configs": [{"targets": targets}]}]}))
    with open(tmp_path / "prometheus.log", "w") as log:
        proc = cluster.segment.spawn(["prometheus", f"--config.file={config}",
                                      f"--storage.tsdb.path={tmp_path}/data", "--web.listen-address=127.0.0.1:9090"],
                                     stdout=subprocess.DEVNULL, stderr=log)
    try:
        def query() -> list[dict]:
            status, body = http_get(cluster.segment, "/api/v1/query?query=" +
                                    urllib.parse.quote("bgpnet_bgp_session_up == 1"), port=9090)
            return json.loads(body)["data"]["result"] if status == 200 else []

        result = wait_for(lambda: len(query()) == 6 and query(), 60, interval=0.5,
                          what="Prometheus to scrape 6 established sessions")
        series = {(r["metric"]["instance"], r["metric"]["peer"]) for r in result}
        assert series == {(f"{n.ip}:{PORT}", p.ip) for n in cluster.nodes.values() for p in others(cluster, n)}
        assert all(r["metric"]["peer_asn"] == str(cluster.asn) and r["value"][1] == "1" for r in result)
    finally:
        cluster.group.stop_process(proc)


def test_a_session_going_down_drops_its_gauge(cluster):
    node1, node3 = cluster.nodes["node1"], cluster.nodes["node3"]
    cluster.kill_agent(node3, signal.SIGTERM)
    wait_for(lambda: metric(node1, "bgpnet_bgp_session_up", peer=node3.ip) == 0, 30,
             what="node1's session gauge for node3 to drop to 0")
    text = scrape(node1)
    assert sample(text, "bgpnet_bgp_session_state_changes_total", peer=node3.ip, state="down") == 1
    assert sample(text, "bgpnet_bgp_session_up", peer=cluster.nodes["node2"].ip) == 1
    wait_for(lambda: metric(node1, "bgpnet_kernel_routes", family="ipv4") == len(node1.bgp_routes()) == 1, 30,
             what="node1's route gauge to follow the withdrawn route")
    peer = next(p for p in status_json(cluster, node1)["peers"] if p["address"] == node3.ip)
    assert peer["state"] == "down" and peer["prefixes_accepted"] == 0
    # One session down out of two: node1 stays ready (the rule asks for at least one).
    assert http_get(node1.ns, "/readyz")[0] == 200

    cluster.start_agent(node3)
    wait_for(lambda: metric(node1, "bgpnet_bgp_session_up", peer=node3.ip) == 1, 60,
             what="node1's session gauge for node3 back to 1")
    assert metric(node1, "bgpnet_bgp_session_state_changes_total", peer=node3.ip, state="established") == 2


def test_an_unregistered_node_is_not_ready_and_a_rejected_route_is_counted(cluster):
    node1 = cluster.nodes["node1"]
    added_before = metric(node1, "bgpnet_kube_node_watch_events_total", type="ADDED")
    node4 = cluster.add_node(4, register=False, start_agent=False)
    node4.pod_cidr = "10.99.4.0/24"  # outside the cluster CIDR 10.244.0.0/16: every peer must refuse it
    cluster.start_agent(node4)
    wait_for(lambda: http_get(node4.ns, "/healthz")[0] == 200, 30, what="node4's agent to serve")
    code, body = http_get(node4.ns, "/readyz")
    assert code == 503 and "own Node node4 not listed yet" in body

    cluster.register_node(node4)
    wait_for(lambda: http_get(node4.ns, "/readyz")[0] == 200, 60, what="node4 ready once registered")
    wait_for(lambda: (metric(node1, "bgpnet_bgp_prefixes_rejected_total", peer=node4.ip,
                             reason="outside-cluster-cidrs") or 0) >= 1, 60,
             what="node1 to count node4's out-of-cluster prefix as rejected")
    text = scrape(node1)
    assert sample(text, "bgpnet_bgp_prefixes_accepted", peer=node4.ip) == 0
    assert sample(text, "bgpnet_kube_node_watch_events_total", type="ADDED") == added_before + 1
    assert "10.99.4.0/24" not in node1.bgp_routes()
    row = next(line for line in node1.ns.run(str(VENV_BIN / "bgpnet"), "status").stdout.splitlines()
               if line.startswith(node4.ip))
    assert row.split()[-5:-2] == ["0", "1", "1"], row  # in 0, out 1, rejected 1 (then malformed, description)


def test_readyz_fails_while_a_route_is_not_programmed(cluster):
    node1, node2 = cluster.nodes["node1"], cluster.nodes["node2"]
    conflicts_before = metric(node1, "bgpnet_route_sync_errors_total", reason="conflict")
    # Another owner takes node2's prefix (as a static route at bgpnet's metric): at the next resync bgpnet
    # finds its route gone and may not overwrite the foreign one, so the route is not programmed.
    node1.ns.run("ip", "route", "replace", node2.pod_cidr, "via", node2.ip, "dev", "eth0", "proto", "static")
    try:
        wait_for(lambda: http_get(node1.ns, "/readyz")[0] == 503, 30, what="node1 unready on a foreign route")
        code, body = http_get(node1.ns, "/readyz")
        assert "routes not programmed" in body, body
        assert metric(node1, "bgpnet_route_sync_errors_total", reason="conflict") > conflicts_before
        assert any("conflict" in e for e in status_json(cluster, node1)["last_errors"])
    finally:
        node1.ns.run("ip", "route", "del", node2.pod_cidr, "proto", "static", check=False)
    wait_for(lambda: http_get(node1.ns, "/readyz")[0] == 200, 30, what="node1 ready again")
    assert node2.pod_cidr in node1.bgp_routes()


def test_healthz_fails_while_the_reconcile_loop_is_wedged(cluster):
    node2 = cluster.nodes["node2"]
    conflist = node2.cni_conf_dir / "10-bgpnet.conflist"
    # A FIFO in place of the conflist: the agent's next reconcile blocks opening it, as on a hung filesystem.
    conflist.unlink()
    os.mkfifo(conflist)
    try:
        wait_for(lambda: http_get(node2.ns, "/healthz")[0] == 503, 60, interval=0.5,
                 what="node2's /healthz to report the wedged loop")
        code, body = http_get(node2.ns, "/healthz")
        assert "loop reconcile made no progress" in body, body
        assert metric(node2, "bgpnet_healthy") == 0
    finally:
        # Unblock the reader: open the FIFO for writing and close it (EOF); the agent then rewrites the file.
        fd = os.open(conflist, os.O_WRONLY | os.O_NONBLOCK) if conflist.is_fifo() else None
        if fd is not None:
            os.close(fd)
    wait_for(lambda: http_get(node2.ns, "/healthz")[0] == 200, 30, what="node2 healthy again")
    assert conflist.is_file() and json.loads(conflist.read_text())["name"] == "bgpnet"


def test_an_exabgp_crash_counts_as_a_restart(cluster):
    node1 = cluster.nodes["node1"]
    pid = status_json(cluster, node1)["speaker"]["pid"]
    assert pid in cluster.exabgp_pids(node1)  # ours: a child of the agent we started
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: metric(node1, "bgpnet_speaker_restarts_total") == 1, 30, what="restart counted")
    wait_for(lambda: status_json(cluster, node1)["speaker"]["pid"] not in (None, pid), 30,
             what="a new ExaBGP")
    wait_for(lambda: all(metric(node1, "bgpnet_bgp_session_up", peer=n.ip) == 1 for n in others(cluster, node1)),
             60, what="node1's sessions re-established")


def test_ipam_usage_follows_pods(cluster):
    node1 = cluster.nodes["node1"]
    assert metric(node1, "bgpnet_ipam_addresses_in_use", pod_cidr=node1.pod_cidr) == 0
    assert metric(node1, "bgpnet_ipam_addresses_capacity", pod_cidr=node1.pod_cidr) == 254
    cluster.add_pod(node1)
    cluster.add_pod(node1)
    assert metric(node1, "bgpnet_ipam_addresses_in_use", pod_cidr=node1.pod_cidr) == 2
    ipam = status_json(cluster, node1)["ipam"]
    assert ipam == [{"pod_cidr": node1.pod_cidr, "in_use": 2, "capacity": 254}]
