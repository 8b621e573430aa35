"""Scale on this 2-core machine: a 100-node lab in ToR mode, and the node source holding 5,000 Node objects.

    sudo .venv/bin/python bench/scale.py                 # 100 nodes; 5,000 Node objects
    sudo .venv/bin/python bench/scale.py --quick         # 4 nodes; 200 Node objects (CI smoke)

Lab: bgpnet.lab in tor mode (BIRD2 ToR, eBGP with AS per node, graceful restart as configured by default), agents
with the in-cluster config as DaemonSet pods (HTTPS and a service-account token to the API stand-in).
Every node is wired first (namespaces, veths: not timed); then the clock starts, every Node is created and its
agent started one after the other, and the clock stops when every node's kernel holds the pod CIDRs of all
others. Reported: time to full convergence, CPU seconds spent by all agents, ExaBGPs and relays (and the ToR)
until then, idle CPU afterwards, and memory per node: RSS, and PSS (proportional set size: shared pages such
as the Python interpreter's are split between the processes sharing them, so the PSS sum is what the node
really spends; RSS double-counts them).

Node source: the Kubernetes API stand-in (127.0.0.1, in this namespace) starts with N Node objects; a child
process creates bgpnet's NodeSource with the real client and reports the time from run() to the first complete
snapshot, its RSS before and after, and the time a changed Node takes to reach on_change through the watch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import TICKS_PER_S, cpu_ticks, emit_json, format_table, pss_kib, rss_kib
from lablib import BenchLab

from bgpnet.lab.cluster import source_root
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.processes import descendants


def lab_scale(nodes: int, window: float, workdir: Path) -> dict:
    with NetnsGroup("bgpsc") as group:
        workdir.mkdir(parents=True, exist_ok=True)
        lab = BenchLab(group, workdir, mode="tor", nodes=nodes, graceful_restart=True)
        try:
            wire_started = time.perf_counter()
            members = [lab.add_node(i) for i in range(1, nodes + 1)]
            wired = time.perf_counter() - wire_started
            tor_pid = lab.cluster.tor.bird.pid if lab.cluster.tor and lab.cluster.tor.bird else None
            started = time.perf_counter()
            for node in members:
                lab.start(node)
            all_started = time.perf_counter() - started
            converged = lab.wait_learned(members, lambda _n: nodes - 1, 600, interval=0.05, started=started)
            pids = {n.name: [n.agent.pid, *descendants(n.agent.pid)] for n in members}
            every = [p for group_pids in pids.values() for p in group_pids]
            spent = sum(cpu_ticks(p) for p in every) / TICKS_PER_S
            tor_spent = cpu_ticks(tor_pid) / TICKS_PER_S if tor_pid else 0.0
            time.sleep(5)  # past start-up work
            before = {p: cpu_ticks(p) for p in [*every, *([tor_pid] if tor_pid else [])]}
            time.sleep(window)
            idle = {p: cpu_ticks(p) - t for p, t in before.items()}
            rss = [sum(rss_kib(p) for p in node_pids) / 1024 for node_pids in pids.values()]
            pss = [sum(pss_kib(p) for p in node_pids) / 1024 for node_pids in pids.values()]
        finally:
            lab.close()
    return {
        "nodes": nodes, "wiring_s": round(wired, 1), "agents_started_s": round(all_started, 2),
        "full_convergence_s": round(converged, 2),
        "cpu_s_until_converged": {"bgpnet_all_nodes": round(spent, 1), "tor_bird": round(tor_spent, 2)},
        "idle_cpu_percent": {"bgpnet_all_nodes": round(100 * sum(v for p, v in idle.items() if p != tor_pid)
                                                       / TICKS_PER_S / window, 1),
                             "tor_bird": round(100 * idle.get(tor_pid, 0) / TICKS_PER_S / window, 2)},
        "memory_mb_per_node": {"rss_mean": round(sum(rss) / len(rss), 1), "pss_mean": round(sum(pss) / len(pss), 1),
                               "pss_total": round(sum(pss), 1)},
    }


CHILD = r"""
import json, sys, threading, time
from benchlib import rss_kib
import os
before = rss_kib(os.getpid())
from bgpnet.kube.client import api_client
from bgpnet.kube.node_source import NodeSource
imported = rss_kib(os.getpid())
expected = int(sys.argv[2])
seen = {}
first = threading.Event()
changed = threading.Event()
def on_change(nodes):
    seen["n"] = len(nodes)
    if len(nodes) >= expected:
        if first.is_set() and nodes.get("node0") is not None and nodes["node0"].label("bgpnet.io/asn") == "65001":
            changed.set()
        first.set()
source = NodeSource(api_client(sys.argv[1]), on_change)
stop = threading.Event()
t0 = time.perf_counter()
threading.Thread(target=source.run, args=(stop,), daemon=True).start()
if not first.wait(300):
    raise SystemExit(f"no complete snapshot: {seen}")
synced = time.perf_counter() - t0
after = rss_kib(os.getpid())
print(json.dumps({"sync_s": synced, "rss_before_import_mb": before / 1024, "rss_after_import_mb": imported / 1024,
                  "rss_after_sync_mb": after / 1024, "nodes": seen["n"]}), flush=True)
line = sys.stdin.readline()  # the parent patched node0
t1 = float(line)
if not changed.wait(60):
    raise SystemExit("change not delivered")
print(json.dumps({"watch_event_s": time.time() - t1}), flush=True)
stop.set()
"""


def node_object(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": f"node{i}", "labels": {"kubernetes.io/hostname": f"node{i}",
                                                         "bgpnet.io/rack": f"r{i // 40}"}},
            "spec": {"podCIDR": f"10.{i // 256}.{i % 256}.0/24", "podCIDRs": [f"10.{i // 256}.{i % 256}.0/24"]},
            "status": {"addresses": [{"type": "InternalIP", "address": f"172.16.{i // 250}.{i % 250 + 1}"},
                                     {"type": "Hostname", "address": f"node{i}"}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def node_source_scale(count: int, workdir: Path) -> dict:
    import kubernetes

    nodes_file = workdir / "nodes.json"
    nodes_file.write_text(json.dumps([node_object(i) for i in range(count)]))
    log = open(workdir / "standin.log", "w+")
    standin = subprocess.Popen([sys.executable, "-m", "integration.kube_api", "--listen", "127.0.0.1:0",
                                "--nodes-file", str(nodes_file)], cwd=str(source_root()), stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        url = ""
        while not url.startswith("http"):
            if standin.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"stand-in did not start: {(workdir / 'standin.log').read_text()[-2000:]}")
            time.sleep(0.05)
            url = (workdir / "standin.log").read_text().partition("\n")[0] if "\n" in (
                workdir / "standin.log").read_text() else ""
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "b",
            "clusters": [{"name": "b", "cluster": {"server": url}}],
            "contexts": [{"name": "b", "context": {"cluster": "b", "user": "b"}}],
            "users": [{"name": "b", "user": {}}]}))
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(kubeconfig), str(count)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, env=env)
        first = json.loads(child.stdout.readline())
        conf = kubernetes.client.Configuration()
        conf.host = url
        api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))
        sent = time.time()
        api.patch_node("node0", {"metadata": {"labels": {"bgpnet.io/asn": "65001"}}})
        child.stdin.write(f"{sent}\n")
        child.stdin.flush()
        second = json.loads(child.stdout.readline())
        child.wait(timeout=30)
    finally:
        standin.terminate()
        standin.wait(timeout=10)
        log.close()
    return {"node_objects": count, **{k: round(v, 3) if isinstance(v, float) else v for k, v in first.items()},
            **{k: round(v, 4) for k, v in second.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 nodes, 200 Node objects")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--node-objects", type=int)
    parser.add_argument("--window", type=float)
    parser.add_argument("--skip-lab", action="store_true")
    args = parser.parse_args(argv)
    nodes = args.nodes or (4 if args.quick else 100)
    objects = args.node_objects or (200 if args.quick else 5000)
    window = args.window or (2.0 if args.quick else 10.0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        source = node_source_scale(objects, workdir)
        lab = None if args.skip_lab else lab_scale(nodes, window, workdir / "lab")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if lab is not None:
        print(format_table(["ToR lab nodes", "converged s", "CPU s (all agents)", "idle CPU % (all)",
                            "RSS MB/node", "PSS MB/node"],
                           [[lab["nodes"], lab["full_convergence_s"], lab["cpu_s_until_converged"]["bgpnet_all_nodes"],
                             lab["idle_cpu_percent"]["bgpnet_all_nodes"], lab["memory_mb_per_node"]["rss_mean"],
                             lab["memory_mb_per_node"]["pss_mean"]]]), end="")
    print(format_table(["Node objects", "sync s", "RSS after import MB", "RSS after sync MB", "watch event ms"],
                       [[source["node_objects"], source["sync_s"], source["rss_after_import_mb"],
                         source["rss_after_sync_mb"], source["watch_event_s"] * 1e3]]), end="")
    emit_json("scale", {"lab": lab, "node_source": source})
    return 0


if __name__ == "__main__":
    sys.exit(main())
