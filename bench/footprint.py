"""Footprint per node: resident memory and idle CPU of bgpnet (agent + ExaBGP + its API helper) beside BIRD2 doing the
same job in the same run — P BGP peers (10 and 100) sending 1,000 routes in all, installed in the kernel.

    sudo .venv/bin/python bench/footprint.py              # 10 and 100 peers, 1,000 routes, 10 s idle window
    sudo .venv/bin/python bench/footprint.py --quick      # 2 peers, 50 routes, 2 s window (CI smoke)

A "peer farm" namespace runs one BIRD2 with P addresses (172.31.0.100+i) on one link: a static protocol with
the routes, and per address one eBGP session to each receiver exporting its own slice of the routes. The
receivers are node1 (`bgpnet agent`, the P farm addresses as global `peers:`) and birdnode (BIRD2, the same P
sessions, `protocol kernel` exporting everything). Both use hold time 9 s / keepalive 3 s (bgpnet's default).
Once both kernels hold every route, RSS (VmRSS) is read and CPU time (utime+stime from /proc) is sampled over
an idle window. Goal (issue 8): agent + speaker <= 70 MB.

What is measured is the agent a node runs: started with the in-cluster config, as the DaemonSet pod is (no
--kubeconfig; service host/port in the environment, token and CA under /var/run/secrets, HTTPS with a bearer
token to the API stand-in; see bgpnet.lab.incluster). `--kubeconfig-agent` measures the lab's older way instead
(--kubeconfig to a plain-HTTP stand-in), which also loads the kubeconfig machinery (requests, oauthlib) that a
node never loads. The JSON says which one ran ("agent_api_config").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import TICKS_PER_S, FibCounter, block_prefixes, cpu_ticks, emit_json, format_table, rss_kib
from lablib import BirdRouter, segment_router

from bgpnet.lab.cluster import Cluster, wait_for
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.processes import descendants, parent_pid

BIRDNODE_IP, BIRDNODE_ASN = "172.31.0.3", 64513
FARM_ASN = 65000
GOAL_MB = 70


def farm_address(i: int) -> str:
    return f"172.31.0.{100 + i}"


def farm_config(i: int, peers: int, routes: int, node_ip: str) -> str:
    """Farm peer i: one BIRD2 process per address, because BIRD runs one session per neighbor address at a time
    (its object lock is keyed by the remote address), whatever the local address."""
    mine = block_prefixes(routes, "10.128.0.0", 26)[i::peers]
    static = "".join(f"  route {p} blackhole;\n" for p in mine)
    parts = [f"router id {farm_address(i)};", "protocol device { }", f"protocol static feed {{\n  ipv4;\n{static}}}"]
    for name, address, asn in (("tonode", node_ip, 64512), ("tobird", BIRDNODE_IP, BIRDNODE_ASN)):
        parts.append(f"""protocol bgp {name} {{
  local {farm_address(i)} as {FARM_ASN};
  neighbor {address} as {asn};
  strict bind yes;  # listen on this address only: the other farm processes listen on theirs
  hold time 9; keepalive time 3; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import none; export all; }};
}}""")
    return "\n".join(parts) + "\n"


def birdnode_config(peers: int) -> str:
    parts = [f"router id {BIRDNODE_IP};", "protocol device { }",
             "protocol kernel {\n  ipv4 { import none; export all; };\n}"]
    for i in range(peers):
        parts.append(f"""protocol bgp f{i} {{
  local {BIRDNODE_IP} as {BIRDNODE_ASN};
  neighbor {farm_address(i)} as {FARM_ASN};
  hold time 9; keepalive time 3; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export none; }};
}}""")
    return "\n".join(parts) + "\n"


def measure(peers: int, routes: int, window: float, workdir: Path, *, in_cluster: bool = True) -> dict:
    from lablib import start_agent

    with NetnsGroup("bgpfp") as group:
        cluster = Cluster(group, workdir, cluster_cidr="10.0.0.0/8", in_cluster=in_cluster)
        node = cluster.add_node(1, start_agent=False, extra_config={
            "nodeToNodeMesh": False,
            "peers": [{"address": farm_address(i), "asn": FARM_ASN} for i in range(peers)]})
        routers = {short: segment_router(cluster, short, [f"{ip}/24"])
                   for short, ip in (("farm", farm_address(0)), ("bird", BIRDNODE_IP))}
        for i in range(1, peers):
            routers["farm"].ns.run("ip", "addr", "add", f"{farm_address(i)}/24", "dev", "eth0")
        counters = {"bgpnet": FibCounter(node.ns.path), "bird": FibCounter(routers["bird"].ns.path)}
        base = {k: c.count() for k, c in counters.items()}
        routers["bird"].start(birdnode_config(peers))
        for i in range(peers):
            BirdRouter(routers["farm"].ns, workdir / f"farm{i}").start(farm_config(i, peers, routes, node.ip))
        agent = start_agent(cluster, node)
        started = time.perf_counter()
        converged = {}
        while len(converged) < 2:
            for name, counter in counters.items():
                if name not in converged and counter.count() - base[name] == routes:
                    converged[name] = time.perf_counter() - started
            if time.perf_counter() - started > 30 + peers:
                sessions = routers["farm"].ns.run("birdc", "-s", str(workdir / "farm0" / "bird.ctl"), "show",
                                                  "protocols", check=False)
                sessions = sessions.stdout + sessions.stderr + (workdir / "farm0" / "bird.log").read_text()
                raise TimeoutError(f"routes not installed: { {k: c.count() - base[k] for k, c in counters.items()} }"
                                   f"; farm sessions:\n{sessions}")
            time.sleep(0.01)
        time.sleep(3.0)  # let start-up work (first resync, ExaBGP's helper start) finish before sampling
        bgpnet_pids = [agent.pid, *descendants(agent.pid)]
        bird_pid = routers["bird"].proc.pid
        wait_for(lambda: len(bgpnet_pids) >= 3, 5, what="agent, ExaBGP and its API helper")
        before = {pid: cpu_ticks(pid) for pid in [*bgpnet_pids, bird_pid]}
        time.sleep(window)
        after = {pid: cpu_ticks(pid) for pid in [*bgpnet_pids, bird_pid]}
        rss = {pid: rss_kib(pid) for pid in [*bgpnet_pids, bird_pid]}
        parents = {pid: parent_pid(pid) for pid in bgpnet_pids}
        for counter in counters.values():
            counter.close()

    def cpu_percent(pids: list[int]) -> float:
        return round(100 * sum(after[p] - before[p] for p in pids) / TICKS_PER_S / window, 2)

    names = {agent.pid: "agent"}
    for pid in bgpnet_pids[1:]:
        # The agent's child is ExaBGP; ExaBGP's child is its API helper (the relay, `cat` once it handed over
        # ExaBGP's pipes).
        names[pid] = "exabgp" if parents[pid] == agent.pid else "api-helper"
    return {
        "peers": peers, "routes": routes, "idle_window_s": window,
        "agent_api_config": "in-cluster" if in_cluster else "kubeconfig",
        "bgpnet": {"rss_mb": round(sum(rss[p] for p in bgpnet_pids) / 1024, 1),
                   "rss_mb_by_process": {names[p]: round(rss[p] / 1024, 1) for p in bgpnet_pids},
                   "idle_cpu_percent": cpu_percent(bgpnet_pids),
                   "idle_cpu_percent_by_process": {names[p]: cpu_percent([p]) for p in bgpnet_pids},
                   "install_s": round(converged["bgpnet"], 3)},
        "bird": {"rss_mb": round(rss[bird_pid] / 1024, 1), "idle_cpu_percent": cpu_percent([bird_pid]),
                 "install_s": round(converged["bird"], 3)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 peers, 50 routes, 2 s window")
    parser.add_argument("--peers", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--routes", type=int)
    parser.add_argument("--window", type=float)
    parser.add_argument("--kubeconfig-agent", action="store_true",
                        help="start the agent with --kubeconfig (plain HTTP) instead of the in-cluster config")
    args = parser.parse_args(argv)
    peer_counts = args.peers or ([2] if args.quick else [10, 100])
    routes = args.routes or (50 if args.quick else 1000)
    window = args.window or (2.0 if args.quick else 10.0)
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    try:
        for peers in peer_counts:
            run_dir = workdir / f"p{peers}"
            run_dir.mkdir()
            results.append(measure(peers, routes, window, run_dir, in_cluster=not args.kubeconfig_agent))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [[r["peers"], r["routes"], r["bgpnet"]["rss_mb"], r["bird"]["rss_mb"],
             f"{r['bgpnet']['rss_mb'] / r['bird']['rss_mb']:.1f}x", r["bgpnet"]["idle_cpu_percent"],
             r["bird"]["idle_cpu_percent"]] for r in results]
    print(format_table(["peers", "routes", "bgpnet RSS MB", "BIRD RSS MB", "ratio", "bgpnet idle CPU %",
                        "BIRD idle CPU %"], rows), end="")
    print(f"  agent API config: {results[0]['agent_api_config'] if results else '-'}")
    for r in results:
        print(f"  {r['peers']} peers, bgpnet by process: RSS MB {r['bgpnet']['rss_mb_by_process']}, idle CPU % "
              f"{r['bgpnet']['idle_cpu_percent_by_process']}")
    emit_json("footprint", {"runs": results, "goal_mb": GOAL_MB,
                            "meets_goal": all(r["bgpnet"]["rss_mb"] <= GOAL_MB for r in results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
