"""Racks in network namespaces for the ToR peering tests: real agents, ExaBGP, BIRD2 routers, kernel, CNI.

Layout (every address lives in a namespace this module created):
- `mgmt`: a bridge with the Kubernetes API stand-in on 172.30.255.254; every node has a `mgmt0` leg there
  (172.30.255.<n>), the control plane only — no node routes pod traffic through it.
- routers (`Router`): namespaces running BIRD2 with a config the test writes. A router has a loopback
  (`lo`, 172.19.<r>.1/32 and fd00:19:<r>::1/128) for multihop sessions and one point-to-point link per
  attached node.
- node n, attached to routers t = 0, 1, ...: interface eth<t>, subnet 172.<20+t>.<n>.0/24 (router .1, node
  .2) and fd00:<20+t>:<n>::/64 (::1, ::2). The node's InternalIPs are its eth0 addresses; its pod CIDRs are
  10.244.<n>.0/24 and fd10:244:0:<n>::/64. Each node has its own link subnet, as on an L3 ToR, so routes
  reflected with the originating node's next hop are NOT directly connected: they exercise next-hop
  resolution through the kernel.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes

from bgpnet.lab.cluster import wait_for
from bgpnet.lab.netns import Netns, NetnsGroup, entered

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
API_IP = "172.30.255.254"
CLUSTER_CIDRS = ["10.244.0.0/16", "fd10:244::/48"]




def link_addresses(node: int, slot: int) -> tuple[str, str, str, str]:
    """(router v4, node v4, router v6, node v6) of node `node`'s link number `slot`."""
    return (f"172.{20 + slot}.{node}.1", f"172.{20 + slot}.{node}.2",
            f"fd00:{20 + slot}:{node}::1", f"fd00:{20 + slot}:{node}::2")


@dataclass
class Router:
    name: str
    index: int
    ns: Netns
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def loopback4(self) -> str:
        return f"172.19.{self.index}.1"

    @property
    def loopback6(self) -> str:
        return f"fd00:19:{self.index}::1"

    @property
    def socket(self) -> Path:
        return self.workdir / "bird.sock"

    def birdc(self, *command: str) -> str:
        return self.ns.run("birdc", "-s", str(self.socket), *command).stdout

    def protocol_state(self, name: str) -> str:
        """BIRD's `show protocols` line for one protocol ('' when unknown)."""
        for line in self.birdc("show", "protocols", name).splitlines():
            if line.startswith(name + " "):
                return line
        return ""

    def established(self, name: str) -> bool:
        return "Established" in self.protocol_state(name)


@dataclass
class Pod:
    name: str
    ns: Netns
    ips: list[str]


@dataclass
class LabNode:
    name: str
    index: int
    ns: Netns
    workdir: Path
    links: list[Router] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    agent: subprocess.Popen | None = None
    pods: list[Pod] = field(default_factory=list)
    metrics: bool = False  # serve /metrics and /status on the namespace's 127.0.0.1:9179 (`bgpnet status`)

    @property
    def ip4(self) -> str:
        return link_addresses(self.index, 0)[1]

    @property
    def ip6(self) -> str:
        return link_addresses(self.index, 0)[3]

    @property
    def pod_cidrs(self) -> list[str]:
        return [f"10.244.{self.index}.0/24", f"fd10:244:0:{self.index}::/64"]

    def routes(self, family: str = "-4") -> dict[str, str]:
        """prefix -> route text (multipath routes span several lines) for bgpnet's routes (proto 179)."""
        out = self.ns.run("ip", family, "route", "show", "proto", "179").stdout
        routes: dict[str, str] = {}
        last = None
        for line in out.splitlines():
            if line.startswith((" ", "\t")) and last is not None:
                routes[last] += "\n" + line.strip()
            elif line.strip():
                last = line.split()[0]
                if last == "default":
                    last = "0.0.0.0/0" if family == "-4" else "::/0"
                elif "/" not in last:  # iproute2 prints host routes without their length
                    last += "/32" if family == "-4" else "/128"
                routes[last] = line.strip()
        return routes

    def gateways(self, prefix: str, family: str = "-4") -> set[str]:
        text = self.routes(family).get(prefix, "")
        words = text.split()
        return {words[i + 1] for i, w in enumerate(words) if w == "via" and i + 1 < len(words)}


class TorLab:
    def __init__(self, group: NetnsGroup, workdir: Path, config: dict) -> None:
        self.group = group
        self.workdir = workdir
        self.config = config
        self.nodes: dict[str, LabNode] = {}
        self.routers: dict[str, Router] = {}
        self.mgmt = group.add("mgmt")
        self.mgmt.run("ip", "link", "add", "br0", "type", "bridge")
        self.mgmt.run("ip", "addr", "add", f"{API_IP}/24", "dev", "br0")
        self.mgmt.run("ip", "link", "set", "br0", "up")
        proc = self.mgmt.spawn([sys.executable, "-m", "integration.kube_api", "--listen", f"{API_IP}:0"],
                               cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http"):
            raise RuntimeError(f"API stand-in did not start: {url!r}")
        self.kubeconfig = workdir / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": url}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
            "users": [{"name": "lab", "user": {}}],
        }))
        conf = kubernetes.client.Configuration()
        conf.host = url
        self.api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))

    def call(self, fn: Callable, *args, **kwargs):
        """The real kubernetes client, from inside the mgmt namespace (its sockets stay there)."""
        with entered(self.mgmt.path):
            return fn(*args, **kwargs)

    # --- routers -----------------------------------------------------------------------------------
    def add_router(self, name: str, index: int) -> Router:
        ns = self.group.add(name)
        ns.as_router()
        ns.run("ip", "addr", "add", f"172.19.{index}.1/32", "dev", "lo")
        ns.run("ip", "-6", "addr", "add", f"fd00:19:{index}::1/128", "dev", "lo")
        router = Router(name, index, ns, self.workdir / name)
        router.workdir.mkdir(parents=True)
        self.routers[name] = router
        return router

    def connect_routers(self, a: Router, b: Router, subnet: int) -> tuple[str, str]:
        """A point-to-point link a <-> b: 172.29.<subnet>.1/.2 and fd00:29:<subnet>::1/::2."""
        self.group.veth(a.ns, f"to-{b.name}"[:15], b.ns, f"to-{a.name}"[:15])
        a.ns.run("ip", "addr", "add", f"172.29.{subnet}.1/24", "dev", f"to-{b.name}"[:15])
        b.ns.run("ip", "addr", "add", f"172.29.{subnet}.2/24", "dev", f"to-{a.name}"[:15])
        a.ns.run("ip", "-6", "addr", "add", f"fd00:29:{subnet}::1/64", "dev", f"to-{b.name}"[:15], "nodad")
        b.ns.run("ip", "-6", "addr", "add", f"fd00:29:{subnet}::2/64", "dev", f"to-{a.name}"[:15], "nodad")
        return f"172.29.{subnet}.1", f"172.29.{subnet}.2"

    def start_bird(self, router: Router, config: str) -> None:
        (router.workdir / "bird.conf").write_text(config)
        router.proc = router.ns.spawn(["bird", "-f", "-c", str(router.workdir / "bird.conf"), "-s",
                                       str(router.socket), "-P", str(router.workdir / "bird.pid")],
                                      stdout=subprocess.DEVNULL, stderr=open(router.workdir / "bird.err", "a"))
        wait_for(router.socket.exists, 10, what=f"{router.name}'s BIRD socket")

    def reconfigure_bird(self, router: Router, config: str) -> None:
        """`birdc configure`: BIRD restarts only the protocols whose configuration changed."""
        (router.workdir / "bird.conf").write_text(config)
        out = router.birdc("configure")
        assert "Reconfigured" in out or "Reconfiguration in progress" in out, out

    def stop_bird(self, router: Router) -> None:
        assert router.proc is not None
        self.group.stop_process(router.proc)
        router.proc = None
        router.socket.unlink(missing_ok=True)

    # --- nodes -------------------------------------------------------------------------------------
    def add_node(self, index: int, routers: list[Router], *, labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None, default_route: bool = True,
                 config: dict | None = None, start: bool = True, metrics: bool = False) -> LabNode:
        name = f"node{index}"
        ns = self.group.add(f"n{index}")
        ns.as_router()
        node = LabNode(name, index, ns, self.workdir / name, list(routers), dict(labels or {}),
                       dict(annotations or {}), metrics=metrics)
        node.workdir.mkdir(parents=True)
        self.group.veth(ns, "mgmt0", self.mgmt, f"m{index}")
        self.mgmt.run("ip", "link", "set", f"m{index}", "master", "br0")
        ns.run("ip", "addr", "add", f"172.30.255.{index}/24", "dev", "mgmt0")
        for slot, router in enumerate(routers):
            r4, n4, r6, n6 = link_addresses(index, slot)
            self.group.veth(ns, f"eth{slot}", router.ns, f"n{index}")
            router.ns.run("ip", "addr", "add", f"{r4}/24", "dev", f"n{index}")
            router.ns.run("ip", "-6", "addr", "add", f"{r6}/64", "dev", f"n{index}", "nodad")
            ns.run("ip", "addr", "add", f"{n4}/24", "dev", f"eth{slot}")
            ns.run("ip", "-6", "addr", "add", f"{n6}/64", "dev", f"eth{slot}", "nodad")
        if default_route:
            # The way to everything beyond the node: its first router. Learned next hops that are not on a
            # link resolve through it, and proxy ARP for pods needs the node to have a route out.
            r4, _, r6, _ = link_addresses(index, 0)
            ns.run("ip", "route", "add", "default", "via", r4)
            ns.run("ip", "-6", "route", "add", "default", "via", r6)
        cfg = {**self.config, **(config or {}),
               "cni": {"dataDir": str(node.workdir / "cni-data"), "logFile": str(node.workdir / "cni.log")}}
        (node.workdir / "config.yaml").write_text(json.dumps(cfg))
        self.nodes[name] = node
        if start:
            self.register(node)
            self.start_agent(node)
        return node

    def node_object(self, node: LabNode) -> dict:
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name, **node.labels},
                             "annotations": dict(node.annotations)},
                "spec": {"podCIDR": node.pod_cidrs[0], "podCIDRs": node.pod_cidrs},
                "status": {"addresses": [{"type": "InternalIP", "address": node.ip4},
                                         {"type": "InternalIP", "address": node.ip6}],
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    def register(self, node: LabNode) -> None:
        self.call(self.api.create_node, self.node_object(node))

    def annotate(self, node: LabNode, annotations: dict[str, str | None]) -> None:
        """Change annotations live (None deletes one), as `kubectl annotate` does."""
        for key, value in annotations.items():
            if value is None:
                node.annotations.pop(key, None)
            else:
                node.annotations[key] = value
        self.call(self.api.patch_node, node.name, {"metadata": {"annotations": annotations}})

    def start_agent(self, node: LabNode) -> None:
        log = open(node.workdir / "agent.log", "a")
        node.agent = node.ns.spawn(
            [str(VENV_BIN / "bgpnet"), "agent", "--config", str(node.workdir / "config.yaml"),
             "--node-name", node.name, "--kubeconfig", str(self.kubeconfig), "--run-dir",
             str(node.workdir / "run"), "--cni-conf-dir", str(node.workdir / "net.d"),
             "--rt-protos-dir", str(self.workdir / "rt_protos.d"), "--log-level", "debug",
             "--metrics-address", "127.0.0.1:9179" if node.metrics else ""],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def agent_log(self, node: LabNode) -> str:
        return (node.workdir / "agent.log").read_text(errors="replace")

    def check_agents(self) -> None:
        for node in self.nodes.values():
            if node.agent is not None and node.agent.poll() is not None:
                raise AssertionError(f"{node.name}'s agent exited ({node.agent.returncode}):\n"
                                     f"{self.agent_log(node)[-3000:]}")

    # --- pods --------------------------------------------------------------------------------------
    def add_pod(self, node: LabNode) -> Pod:
        """Wire a pod with bgpnet-cni from the conflist the node's agent wrote (one IP per family)."""
        conflist_path = node.workdir / "net.d" / "10-bgpnet.conflist"
        wait_for(conflist_path.exists, 30, what=f"{node.name}'s CNI conflist")
        conflist = json.loads(conflist_path.read_text())
        plugin = {"cniVersion": conflist["cniVersion"], "name": conflist["name"], **conflist["plugins"][0]}
        pod_ns = self.group.add(f"n{node.index}p{len(node.pods)}")
        env = {**os.environ, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": uuid.uuid4().hex,
               "CNI_NETNS": pod_ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}
        proc = subprocess.run(node.ns.argv([str(VENV_BIN / "bgpnet-cni")]), input=json.dumps(plugin), env=env,
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"bgpnet-cni ADD failed: {proc.stdout} {proc.stderr}")
        ips = [entry["address"].split("/")[0] for entry in json.loads(proc.stdout)["ips"]]
        pod = Pod(f"{node.name}-pod{len(node.pods)}", pod_ns, ips)
        node.pods.append(pod)
        return pod

    @staticmethod
    def ping(src: Pod, dst_ip: str) -> bool:
        cmd = "ping" if ipaddress.ip_address(dst_ip).version == 4 else "ping6"
        return src.ns.run(cmd, "-c", "1", "-W", "2", dst_ip, check=False, timeout=15).returncode == 0


# --- BIRD configuration ---------------------------------------------------------------------------
BIRD_COMMON = """
log "{log}" all;
router id {router_id};
protocol device {{ scan time 1; }}
protocol direct {{ ipv4; ipv6; }}
protocol kernel {{ ipv4 {{ export where source = RTS_BGP; }}; merge paths on; }}
protocol kernel {{ ipv6 {{ export where source = RTS_BGP; }}; merge paths on; }}
"""

TIMERS = "hold time 9; keepalive time 3; connect retry time 2; error wait time 1, 5;"


def bird_common(router: Router) -> str:
    return BIRD_COMMON.format(log=router.workdir / "bird.log", router_id=router.loopback4)


def bird_neighbor(name: str, local_as: int, address: str, peer_as: int, *, source: str | None = None,
                  extra: str = "", export: str = "all", import_: str = "all") -> str:
    """One explicit BGP protocol of a BIRD router (IPv4 or IPv6 by the neighbor address)."""
    channel = "ipv6" if ":" in address else "ipv4"
    src = f"source address {source};" if source else ""
    return f"""
protocol bgp {name} {{
    local as {local_as}; neighbor {address} as {peer_as}; {src}
    {TIMERS}
    {extra}
    {channel} {{ import {import_}; export {export}; }};
}}
"""
