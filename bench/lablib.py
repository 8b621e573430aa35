"""Lab building blocks for the benchmarks: bgpnet.lab's Cluster with the agent started at info level (the lab's
default is debug, which would add logging cost to what is measured), mesh or ToR layouts from
bgpnet.lab.topology, per-node route counters, BIRD2 routers on the lab's segment, and the agent's own metrics.

Graceful restart (issue 5) deliberately keeps a dead peer's routes for its Restart Time; a benchmark of failure
detection turns it off unless asked (`graceful_restart=True`), and says so in its JSON.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchlib import FibCounter

from bgpnet.lab.bird import render_bird_config
from bgpnet.lab.cluster import Cluster, ClusterNode, wait_for
from bgpnet.lab.netns import Netns, NetnsGroup, entered
from bgpnet.lab.processes import descendants
from bgpnet.lab.topology import LabPlan, plan_lab, tor_peer_config


def graceful_restart_fragment(enabled: bool) -> dict:
    """The agent config fragment switching graceful restart, if this agent's config knows the key."""
    from bgpnet.config import ConfigError, parse_config
    from bgpnet.lab.topology import CLUSTER_ASN, CLUSTER_CIDR

    fragment = {"gracefulRestart": {"enabled": enabled}}
    try:
        parse_config({"asn": CLUSTER_ASN, "clusterCIDRs": [CLUSTER_CIDR], **fragment})
    except ConfigError:
        return {}
    return fragment


class BenchLab:
    """A lab cluster for measurements: nodes are added wired but stopped, then started when the bench says.
    Agents use the in-cluster config by default, as a DaemonSet pod does (HTTPS and a token to the stand-in).
    `tor_config` replaces the lab's own ToR BIRD2 config (bgpnet.lab.bird) when a bench needs another one."""

    def __init__(self, group: NetnsGroup, workdir: Path, *, mode: str, nodes: int, graceful_restart: bool,
                 progress: Callable[[str], None] = lambda _m: None, in_cluster: bool = True,
                 tor_config: str | None = None) -> None:
        self.plan: LabPlan = plan_lab(nodes, 0, mode)  # type: ignore[arg-type]
        self.cluster = Cluster(group, workdir, progress=progress, in_cluster=in_cluster)
        extra = {"routeSyncPeriod": 30, **graceful_restart_fragment(graceful_restart)}
        if self.plan.tor is not None:
            self.cluster.add_tor(self.plan.tor, tor_config or render_bird_config(self.plan))
            extra.update(tor_peer_config(self.plan.tor))
        self.extra = extra
        self.counters: dict[str, FibCounter] = {}
        self.baseline: dict[str, int] = {}

    def add_node(self, index: int) -> ClusterNode:
        """Namespace, address and config; not registered, agent not started. Records the route baseline."""
        plan = self.plan.nodes[index - 1]
        node = self.cluster.add_node(index, register=False, start_agent=False, asn=plan.asn, labels=plan.labels,
                                     extra_config=self.extra)
        self.counters[node.name] = FibCounter(node.ns.path)
        self.baseline[node.name] = self.counters[node.name].count()
        return node

    def start(self, node: ClusterNode) -> None:
        """Register the Node and start its agent (what a node joining the cluster does)."""
        self.cluster.register_node(node)
        start_agent(self.cluster, node)

    def learned(self, node: ClusterNode) -> int:
        return self.counters[node.name].count() - self.baseline[node.name]

    def wait_learned(self, nodes: list[ClusterNode], expected: Callable[[ClusterNode], int], timeout: float,
                     interval: float = 0.001, started: float | None = None) -> float:
        """Seconds (since `started`, default now) until every node holds `expected(node)` learned routes,
        polled from fib_triestat."""
        started = time.perf_counter() if started is None else started
        pending = list(nodes)
        while pending:
            pending = [n for n in pending if self.learned(n) != expected(n)]
            if not pending:
                break
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{len(pending)} nodes not converged after {timeout:.0f}s: "
                                   + ", ".join(f"{n.name}={self.learned(n)}/{expected(n)}" for n in pending[:5]))
            time.sleep(interval)
        return time.perf_counter() - started

    def close(self) -> None:
        for counter in self.counters.values():
            counter.close()


def start_agent(cluster: Cluster, node: ClusterNode, level: str = "info") -> subprocess.Popen:
    """The lab's own agent start (with --kubeconfig, or in-cluster when the Cluster was built so), at `level`."""
    return cluster.start_agent(node, log_level=level)


def agent_pids(node: ClusterNode) -> list[int]:
    """The node's agent and every process under it (ExaBGP, its API helper, the BFD process); [] when stopped."""
    agent = node.agent
    return [agent.pid, *descendants(agent.pid)] if agent is not None else []


def stop_agent(cluster: Cluster, node: ClusterNode) -> None:
    """SIGTERM to the node's agent, if it runs, and wait for it: it stops its children and leaves its routes in
    the kernel (a restart keeps forwarding), so withdraw what it learned first when that matters."""
    if node.agent is not None:
        cluster.kill_agent(node, signal.SIGTERM)


def wait_agent_gone(node: ClusterNode, timeout: float = 20) -> None:
    wait_for(lambda: node.agent is None or node.agent.poll() is not None, timeout, what=f"{node.name}'s agent")


class BirdRouter:
    """One BIRD2 process in a namespace, with its own config, control socket and log in `workdir`."""

    def __init__(self, ns: Netns, workdir: Path) -> None:
        self.ns = ns
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "bird.ctl"
        self.proc: subprocess.Popen | None = None

    def start(self, config: str) -> None:
        conf = self.workdir / "bird.conf"
        conf.write_text(config)
        self.socket.unlink(missing_ok=True)
        with open(self.workdir / "bird.log", "a") as log:
            self.proc = self.ns.spawn(["bird", "-f", "-c", str(conf), "-s", str(self.socket),
                                       "-P", str(self.workdir / "bird.pid")],
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self.socket.exists, 30, what=f"BIRD control socket {self.socket}")

    def stop(self, group: NetnsGroup) -> None:
        if self.proc is not None:
            group.stop_process(self.proc)
            self.proc = None


def segment_router(cluster: Cluster, short: str, addresses: list[str]) -> BirdRouter:
    """A router namespace on the cluster's segment (bridge port `p<short>`), `addresses` (CIDR notation) on its
    eth0; IPv6 ones without duplicate address detection, which would hold them back for a second."""
    group = cluster.group
    ns = group.add(short)
    ns.as_router()
    group.veth(ns, "eth0", cluster.segment, f"p{short}")
    cluster.segment.run("ip", "link", "set", f"p{short}", "master", "br0")
    for address in addresses:
        ns.run("ip", "addr", "add", address, "dev", "eth0", *(["nodad"] if ":" in address else []))
    return BirdRouter(ns, cluster.workdir / short)


def update_agent_config(node: ClusterNode, **changes: object) -> None:
    """Change keys of the node's agent config file (read at the agent's next start)."""
    path = node.workdir / "config.yaml"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def agent_metrics(node: ClusterNode, port: int = 9179) -> dict[str, float]:
    """The node's agent's /metrics (its default --metrics-address, inside the node's namespace) as
    {"name{label=value,...}": value} for the samples, parsed with prometheus_client's own text parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with entered(node.ns.path):
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def metric_total(metrics: dict[str, float], name: str) -> float:
    """The sum of a metric's samples over all label sets."""
    return sum(value for key, value in metrics.items() if key.partition("{")[0] == name)
