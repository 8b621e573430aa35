"""A bgpnet cluster in network namespaces: real agents, real ExaBGP, real kernel, pods wired by bgpnet-cni.

The one implementation behind both `bgpnet lab` and the privileged cluster tests. Layout (addresses from
bgpnet.lab.topology): a "segment" namespace holds a Linux bridge (the rack's L2 segment) and the Kubernetes
API stand-in; every node is a namespace wired to the bridge by a veth (`eth0`), runs one `bgpnet agent`, and
gets pods wired by `bgpnet-cni` from the conflist its agent wrote; an optional ToR namespace sits on the same
bridge. The caller drives the API stand-in with the real `kubernetes` client from inside the segment namespace
(sockets created there stay there), so no address outside the cluster's own namespaces is ever used.

The API stand-in is test code (`integration/kube_api`), not part of the installed package: it is started as
`python -m integration.kube_api` from the source checkout the `bgpnet` package was installed from (editable).
Every process is started in its own session, so a Ctrl-C at the terminal reaches only the builder, whose
cleanup then stops them by PID.

With `in_cluster=True` the agents run as a DaemonSet pod's would (bgpnet.lab.incluster): no --kubeconfig, the
service host and port in the environment, a service-account token and CA file where the in-cluster config looks
for them, and the stand-in serving HTTPS only and demanding that token. The test-side client and the written
kubeconfig carry the CA and token too, so `kubectl --kubeconfig` keeps working. By default (False) the agents get
--kubeconfig for a plain-HTTP stand-in without authentication.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bgpnet
from bgpnet.lab.incluster import ApiCredentials, in_cluster_argv, in_cluster_env, write_credentials
from bgpnet.lab.netns import Netns, NetnsGroup, entered
from bgpnet.lab.processes import descendants
from bgpnet.lab.topology import API_IP, CLUSTER_ASN, CLUSTER_CIDR, SEGMENT, TorPlan, node_ip, pod_cidr

STANDIN_MODULE = "integration.kube_api"


class LabError(RuntimeError):
    """The cluster cannot be built here; the message says what to do."""


def source_root() -> Path:
    """The source checkout holding the `bgpnet` package (an editable install, as dev/setup makes)."""
    root = Path(bgpnet.__file__).resolve().parent.parent
    if not (root / "integration" / "kube_api" / "__main__.py").is_file():
        raise LabError(f"the lab needs a source checkout: its Kubernetes API stand-in (integration/kube_api) is "
                       f"not shipped in the package (it is a test double, kept out of the agent's install), and "
                       f"{root} has none. From a checkout of bgpnet's source, as root, run: "
                       f"bash dev/setup && .venv/bin/bgpnet lab up --nodes 3")
    return root


def executable(name: str) -> str:
    """An installed console script, preferring the one next to the running interpreter (the venv's)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise LabError(f"{name} not found next to {sys.executable} nor on PATH: install bgpnet (dev/setup)")
    return found


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
    asn: int = CLUSTER_ASN
    labels: dict[str, str] | None = None
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


@dataclass
class Tor:
    plan: TorPlan
    ns: Netns
    workdir: Path
    bird: subprocess.Popen | None = None

    @property
    def bird_config(self) -> Path:
        return self.workdir / "bird.conf"

    @property
    def bird_socket(self) -> Path:
        return self.workdir / "bird.ctl"

    def birdc(self, *command: str) -> str:
        return self.ns.run("birdc", "-s", str(self.bird_socket), *command, check=False).stdout


class Cluster:
    def __init__(self, group: NetnsGroup, workdir: Path, *, asn: int = CLUSTER_ASN,
                 cluster_cidr: str = CLUSTER_CIDR, extra_config: dict | None = None,
                 progress: Callable[[str], None] = lambda _msg: None, in_cluster: bool = False) -> None:
        import kubernetes  # here, not at import time: `bgpnet --help` should not pay for it

        self.group = group
        self.workdir = workdir
        self.asn = asn
        self.cluster_cidr = cluster_cidr
        self.extra_config = extra_config or {}
        self.progress = progress
        self.nodes: dict[str, ClusterNode] = {}
        self.tor: Tor | None = None
        progress(f"segment: bridge {SEGMENT} in netns {group.tag}-seg")
        self.segment = group.add("seg")
        self.segment.run("ip", "link", "add", "br0", "type", "bridge")
        self.segment.run("ip", "addr", "add", f"{API_IP}/{SEGMENT.prefixlen}", "dev", "br0")
        self.segment.run("ip", "link", "set", "br0", "up")
        self.credentials: ApiCredentials | None = None
        if in_cluster:
            progress("in-cluster agents: TLS certificate and service-account token for the API stand-in")
            self.credentials = write_credentials(workdir / "api-credentials", API_IP)
        progress(f"Kubernetes API stand-in on {API_IP}")
        self.api_proc, self.api_url = self._start_api()
        self.kubeconfig = workdir / "kubeconfig"
        cluster: dict[str, Any] = {"server": self.api_url}
        user: dict[str, Any] = {}
        conf = kubernetes.client.Configuration()
        conf.host = self.api_url
        if self.credentials is not None:
            cluster["certificate-authority"] = str(self.credentials.cert)
            user["token"] = self.credentials.token
            conf.ssl_ca_cert = str(self.credentials.cert)
            conf.api_key = {"authorization": f"Bearer {self.credentials.token}"}
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": cluster}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
            "users": [{"name": "lab", "user": user}],
        }))
        self.api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))

    @property
    def in_cluster(self) -> bool:
        return self.credentials is not None

    def _start_api(self) -> tuple[subprocess.Popen, str]:
        # stdout goes to a file, not a pipe: the stand-in outlives `bgpnet lab up`, and a pipe whose reader has
        # exited would kill it with SIGPIPE on its next write.
        out = self.workdir / "kube-api.log"
        argv = [sys.executable, "-m", STANDIN_MODULE, "--listen", f"{API_IP}:0"]
        if self.credentials is not None:
            argv += ["--tls-cert", str(self.credentials.cert), "--tls-key", str(self.credentials.key),
                     "--token-file", str(self.credentials.token_file), "--access-log"]
        with open(out, "w") as log:
            proc = self.segment.spawn(argv, cwd=str(source_root()), stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

        def url() -> str | None:
            if proc.poll() is not None:
                raise LabError(f"API stand-in exited ({proc.returncode}): {out.read_text()[-2000:]}")
            first = out.read_text().partition("\n")
            return first[0] if first[1] else None

        line = str(wait_for(url, 30, 0.02, "the API stand-in to print its URL"))
        if not line.startswith("http"):
            raise LabError(f"API stand-in did not start: {line!r}")
        return proc, line

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Call the real kubernetes client from inside the segment namespace."""
        with entered(self.segment.path):
            return fn(*args, **kwargs)

    # --- ToR ---------------------------------------------------------------------------------------
    def add_tor(self, plan: TorPlan, bird_config: str, *, start_bird: bool = True) -> Tor:
        """The rack's router on the segment. Its BIRD2 config is always written (as an example for an
        operator's own router); with `start_bird` BIRD2 runs on it, else the namespace waits for yours."""
        ns = self.group.add("tor")
        ns.as_router()
        self.group.veth(ns, "eth0", self.segment, "ptor")
        self.segment.run("ip", "link", "set", "ptor", "master", "br0")
        ns.run("ip", "addr", "add", f"{plan.ip}/{SEGMENT.prefixlen}", "dev", "eth0")
        tor = Tor(plan, ns, self.workdir / "tor")
        tor.workdir.mkdir(parents=True)
        tor.bird_config.write_text(bird_config)
        if start_bird:
            with open(tor.workdir / "bird.log", "w") as log:
                tor.bird = ns.spawn(["bird", "-f", "-c", str(tor.bird_config), "-s", str(tor.bird_socket),
                                     "-P", str(tor.workdir / "bird.pid")],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.tor = tor
        return tor

    # --- nodes -------------------------------------------------------------------------------------
    def add_node(self, index: int, *, register: bool = True, start_agent: bool = True, asn: int | None = None,
                 labels: dict[str, str] | None = None, extra_config: dict | None = None) -> ClusterNode:
        name = f"node{index}"
        ns = self.group.add(f"n{index}")
        ns.as_router()
        self.group.veth(ns, "eth0", self.segment, f"p{index}")
        self.segment.run("ip", "link", "set", f"p{index}", "master", "br0")
        ip = node_ip(index)
        ns.run("ip", "addr", "add", f"{ip}/{SEGMENT.prefixlen}", "dev", "eth0")
        # A default route gives the node a way "out" (into the segment namespace only); proxy ARP answers a
        # pod's ARP for 169.254.1.1 only when the node itself has a route towards that address.
        ns.run("ip", "route", "add", "default", "via", API_IP)
        node = ClusterNode(name=name, index=index, ns=ns, ip=ip, pod_cidr=pod_cidr(index),
                           workdir=self.workdir / name, asn=asn or self.asn, labels=labels)
        node.workdir.mkdir(parents=True)
        config = {"asn": self.asn, "clusterCIDRs": [self.cluster_cidr], "nodeToNodeMesh": True,
                  "startupGracePeriod": 10, "routeSyncPeriod": 5,
                  "cni": {"dataDir": str(node.cni_data_dir), "logFile": str(node.workdir / "cni.log")},
                  **self.extra_config, **(extra_config or {})}
        (node.workdir / "config.yaml").write_text(json.dumps(config))
        self.nodes[name] = node
        if register:
            self.register_node(node)
        if start_agent:
            self.start_agent(node)
        return node

    def node_object(self, node: ClusterNode) -> dict:
        labels = node.labels if node.labels is not None else {"kubernetes.io/hostname": node.name}
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": labels},
                "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
                "status": {"addresses": [{"type": "InternalIP", "address": node.ip},
                                         {"type": "Hostname", "address": node.name}],
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    def register_node(self, node: ClusterNode) -> None:
        self.call(self.api.create_node, self.node_object(node))

    def delete_node(self, node: ClusterNode) -> None:
        self.call(self.api.delete_node, node.name)

    def agent_argv(self, node: ClusterNode, log_level: str = "debug") -> list[str]:
        """The agent's command line as the namespace runs it: with --kubeconfig, or wrapped for in-cluster."""
        argv = [executable("bgpnet"), "agent", "--config", str(node.workdir / "config.yaml"),
                "--node-name", node.name, "--run-dir", str(node.run_dir), "--cni-conf-dir", str(node.cni_conf_dir),
                "--rt-protos-dir", str(self.workdir / "rt_protos.d"), "--log-level", log_level]
        if self.credentials is None:
            return [*argv[:2], "--kubeconfig", str(self.kubeconfig), *argv[2:]]
        return in_cluster_argv(argv, self.credentials)

    def agent_env(self, base: dict[str, str] | None = None) -> dict[str, str] | None:
        """The agent's environment: `base` (default: ours) plus, in-cluster, the service's host and port."""
        if self.credentials is None:
            return base
        return in_cluster_env(API_IP, urlsplit(self.api_url).port or 443, base)

    def start_agent(self, node: ClusterNode, *, log_level: str = "debug",
                    env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start the node's agent (its PID is the agent's, also in-cluster); `env` replaces our environment."""
        with open(node.workdir / "agent.log", "a") as log:
            node.agent = node.ns.spawn(
                self.agent_argv(node, log_level), env=self.agent_env(env),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return node.agent

    def exabgp_pids(self, node: ClusterNode) -> list[int]:
        """PIDs of ExaBGP processes started for this node (read from /proc: children of its agent)."""
        if node.agent is None:
            return []
        return descendants(node.agent.pid)

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
    def add_pod(self, node: ClusterNode, *, conf_dir: Path | None = None,
                plugin_argv: list[str] | None = None) -> Pod:
        """Wire a pod with bgpnet-cni exactly as a runtime would, from the conflist the agent wrote.

        By default the plugin is the installed console script and the conflist is in the agent's
        --cni-conf-dir; a node whose agent runs from the image passes its own dir and the plugin the init
        container installed (`plugin_argv`, run in the node's namespace)."""
        conflist_path = (conf_dir or node.cni_conf_dir) / "10-bgpnet.conflist"
        wait_for(conflist_path.exists, 30, what=f"{node.name}'s agent to write its CNI conflist")
        conflist = json.loads(conflist_path.read_text())
        plugin = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
        pod_ns = self.group.add(f"n{node.index}p{len(node.pods)}")
        container_id = uuid.uuid4().hex
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": container_id,
               "CNI_NETNS": pod_ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
        proc = subprocess.run(node.ns.argv(plugin_argv or [executable("bgpnet-cni")]), input=json.dumps(plugin),
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
