"""A bgpnet cluster in network namespaces, for integration tests: real agents, real ExaBGP, real kernel.

Layout: one "segment" namespace holds a Linux bridge (the rack's L2 segment, 172.31.0.0/24) and the
Kubernetes API stand-in listening on 172.31.0.254; every node is a namespace wired to the bridge by a veth
(`eth0`, 172.31.0.<10+i>), runs one `bgpnet agent`, and gets pods wired by `bgpnet-cni` from the conflist its
agent wrote. The test process drives the API stand-in with the real `kubernetes` client from inside the
segment namespace (sockets created there stay there), so no address outside our namespaces is ever used.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes

from bgpnet.lab.netns import Netns, NetnsGroup, entered

SEGMENT = ipaddress.ip_network("172.31.0.0/24")
API_IP = "172.31.0.254"
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def wait_for(predicate: Callable[[], object], timeout: float = 30, interval: float = 0.05,
             what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Pod:
    name: str
    ns: Netns
    container_id: str
    ip: str


@dataclass
class ClusterNode:
    name: str
    index: int
    ns: Netns
    ip: str
    pod_cidr: str
    workdir: Path
    agent: subprocess.Popen | None = None
    pods: list[Pod] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.workdir / "cni-data"

    def bgp_routes(self, family: str = "-4") -> dict[str, str]:
        """prefix -> route line, for the routes bgpnet (proto 179) owns in this node's main table."""
        out = self.ns.run("ip", family, "route", "show", "proto", "179").stdout
        return {line.split()[0]: line for line in out.splitlines() if line.strip()}


class Cluster:
    def __init__(self, group: NetnsGroup, workdir: Path, *, asn: int = 64512,
                 cluster_cidr: str = "10.244.0.0/16", extra_config: dict | None = None) -> None:
        self.group = group
        self.workdir = workdir
        self.asn = asn
        self.cluster_cidr = cluster_cidr
        self.extra_config = extra_config or {}
        self.nodes: dict[str, ClusterNode] = {}
        self.segment = group.add("seg")
        self.segment.run("ip", "link", "add", "br0", "type", "bridge")
        self.segment.run("ip", "addr", "add", f"{API_IP}/24", "dev", "br0")
        self.segment.run("ip", "link", "set", "br0", "up")
        self.api_proc, self.api_url = self._start_api()
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": self.api_url}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
            "users": [{"name": "lab", "user": {}}],
        }))
        conf = kubernetes.client.Configuration()
        conf.host = self.api_url
        self.api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))

    def _start_api(self) -> tuple[subprocess.Popen, str]:
        proc = self.segment.spawn([sys.executable, "-m", "integration.kube_api", "--listen", f"{API_IP}:0"],
                                  cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("http"):
            raise RuntimeError(f"API stand-in did not start: {line!r}")
        return proc, line

    def call(self, fn: Callable, *args, **kwargs):
        """Call the real kubernetes client from inside the segment namespace."""
        with entered(self.segment.path):
            return fn(*args, **kwargs)

    # --- nodes -------------------------------------------------------------------------------------
    def add_node(self, index: int, *, register: bool = True, start_agent: bool = True) -> ClusterNode:
        name = f"node{index}"
        ns = self.group.add(f"n{index}")
        ns.as_router()
        self.group.veth(ns, "eth0", self.segment, f"p{index}")
        self.segment.run("ip", "link", "set", f"p{index}", "master", "br0")
        ip = str(SEGMENT.network_address + 10 + index)
        ns.run("ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        # A default route gives the node a way "out" (into the segment namespace only); proxy ARP answers a
        # pod's ARP for 169.254.1.1 only when the node itself has a route towards that address.
        ns.run("ip", "route", "add", "default", "via", API_IP)
        node = ClusterNode(name=name, index=index, ns=ns, ip=ip, pod_cidr=f"10.244.{index}.0/24",
                           workdir=self.workdir / name)
        node.workdir.mkdir(parents=True)
        config = {"asn": self.asn, "clusterCIDRs": [self.cluster_cidr], "nodeToNodeMesh": True,
                  "startupGracePeriod": 10, "routeSyncPeriod": 5,
                  "cni": {"dataDir": str(node.cni_data_dir), "logFile": str(node.workdir / "cni.log")},
                  **self.extra_config}
        (node.workdir / "config.yaml").write_text(json.dumps(config))
        self.nodes[name] = node
        if register:
            self.register_node(node)
        if start_agent:
            self.start_agent(node)
        return node

    def node_object(self, node: ClusterNode) -> dict:
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
                "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
                "status": {"addresses": [{"type": "InternalIP", "address": node.ip},
                                         {"type": "Hostname", "address": node.name}],
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    def register_node(self, node: ClusterNode) -> None:
        self.call(self.api.create_node, self.node_object(node))

    def delete_node(self, node: ClusterNode) -> None:
        self.call(self.api.delete_node, node.name)

    def start_agent(self, node: ClusterNode) -> subprocess.Popen:
        log = open(node.workdir / "agent.log", "a")
        node.agent = node.ns.spawn(
            [str(VENV_BIN / "bgpnet"), "agent", "--config", str(node.workdir / "config.yaml"),
             "--node-name", node.name, "--kubeconfig", str(self.kubeconfig), "--run-dir", str(node.run_dir),
             "--cni-conf-dir", str(node.cni_conf_dir), "--rt-protos-dir", str(self.workdir / "rt_protos.d"),
             "--log-level", "debug"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return node.agent

    def exabgp_pids(self, node: ClusterNode) -> list[int]:
        """PIDs of ExaBGP processes started for this node (read from /proc: children of its agent)."""
        if node.agent is None:
            return []
        return _descendants(node.agent.pid)

    def kill_agent(self, node: ClusterNode, sig: int = signal.SIGKILL) -> None:
        """Kill the agent and (with SIGKILL, which it cannot forward) its ExaBGP, by PID."""
        assert node.agent is not None
        children = self.exabgp_pids(node)
        os.kill(node.agent.pid, sig)
        if sig == signal.SIGKILL:
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        node.agent.wait(timeout=20)
        node.agent = None  # deliberately stopped: no longer expected to serve

    def agent_log(self, node: ClusterNode) -> str:
        return (node.workdir / "agent.log").read_text(errors="replace")

    # --- pods --------------------------------------------------------------------------------------
    def add_pod(self, node: ClusterNode) -> Pod:
        """Wire a pod with bgpnet-cni exactly as a runtime would, from the conflist the agent wrote."""
        conflist_path = node.cni_conf_dir / "10-bgpnet.conflist"
        wait_for(conflist_path.exists, 30, what=f"{node.name}'s agent to write its CNI conflist")
        conflist = json.loads(conflist_path.read_text())
        plugin = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
        pod_ns = self.group.add(f"n{node.index}p{len(node.pods)}")
        container_id = uuid.uuid4().hex
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": container_id,
               "CNI_NETNS": pod_ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
        proc = subprocess.run(node.ns.argv([str(VENV_BIN / "bgpnet-cni")]), input=json.dumps(plugin),
                              env=env, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"bgpnet-cni ADD failed: {proc.stdout} {proc.stderr}")
        result = json.loads(proc.stdout)
        ip = result["ips"][0]["address"].split("/")[0]
        pod = Pod(name=f"{node.name}-pod{len(node.pods)}", ns=pod_ns, container_id=container_id, ip=ip)
        node.pods.append(pod)
        return pod

    def ping(self, src: Pod, dst_ip: str, count: int = 1) -> bool:
        proc = src.ns.run("ping", "-c", str(count), "-W", "1", "-i", "0.2", dst_ip, check=False, timeout=15)
        return proc.returncode == 0

    def all_pods(self) -> list[Pod]:
        return [p for n in self.nodes.values() for p in n.pods]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
