"""Helpers for the bgpnet-cni privileged tests (no tests here): a node namespace wired like a Kubernetes node,
and a way to call the real installed plugin inside it exactly as a runtime does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF_PLUGINS = "/usr/lib/cni"


def plugin_path() -> str:
    installed = Path(sys.executable).parent / "bgpnet-cni"
    return str(installed if installed.exists() else ROOT / "cni" / "bgpnet-cni")


class Node:
    """A "node" namespace with an uplink to a "tor" namespace (its default route, which proxy ARP needs),
    forwarding on, and a private IPAM data dir."""

    def __init__(self, group, tmp_path: Path, name: str = "node", uplink_v4: str = "172.31.250",
                 uplink_v6: str = "fd00:ffff:250") -> None:
        self.group = group
        self.ns = group.add(name)
        self.tor = group.add(f"{name}tor")
        group.veth(self.ns, "up0", self.tor, "down0")
        self.ns.as_router()
        self.ip4 = f"{uplink_v4}.1"
        self.ip6 = f"{uplink_v6}::1"
        self.ns.run("ip", "addr", "add", f"{self.ip4}/24", "dev", "up0")
        self.tor.run("ip", "addr", "add", f"{uplink_v4}.2/24", "dev", "down0")
        self.ns.run("ip", "-6", "addr", "add", f"{self.ip6}/64", "dev", "up0", "nodad")
        self.tor.run("ip", "-6", "addr", "add", f"{uplink_v6}::2/64", "dev", "down0", "nodad")
        self.ns.run("ip", "route", "add", "default", "via", f"{uplink_v4}.2")
        self.ns.run("ip", "-6", "route", "add", "default", "via", f"{uplink_v6}::2")
        self.data_dir = tmp_path / f"ipam-{name}"
        self.pods: dict[str, object] = {}

    def pod(self, short: str):
        ns = self.group.add(short)
        self.pods[short] = ns
        return ns

    def env(self, command: str, container_id: str = "", netns: str = "", ifname: str = "eth0",
            extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {"CNI_COMMAND": command, "CNI_PATH": REF_PLUGINS, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if container_id:
            env["CNI_CONTAINERID"] = container_id
        if netns:
            env["CNI_NETNS"] = netns
        if ifname:
            env["CNI_IFNAME"] = ifname
        env.update(extra or {})
        return env

    def popen(self, exe: str, env: dict[str, str], conf: dict) -> subprocess.Popen:
        argv = ["ip", "netns", "exec", self.ns.name, "env", "-i", *(f"{k}={v}" for k, v in env.items()), exe]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        proc.stdin.write(json.dumps(conf))
        proc.stdin.close()
        return proc

    def call(self, exe: str, env: dict[str, str], conf: dict, timeout: float = 60) -> tuple[int, dict | None, str]:
        """Run one plugin inside the node namespace; (exit status, decoded stdout or None, stderr)."""
        proc = self.popen(exe, env, conf)
        out = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=timeout)
        return proc.returncode, (json.loads(out) if out.strip() else None), err

    def call_bytes(self, env: dict[str, str], data: bytes, timeout: float = 60) -> tuple[int, dict | None, str]:
        """Like `call`, with raw bytes on stdin (the plugin may stop reading early: a closed pipe is fine)."""
        argv = ["ip", "netns", "exec", self.ns.name, "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                plugin_path()]
        proc = subprocess.run(argv, input=data, capture_output=True, timeout=timeout)
        out = proc.stdout.decode()
        return proc.returncode, (json.loads(out) if out.strip() else None), proc.stderr.decode()

    def snapshot(self, network: str = "podnet") -> dict[str, str]:
        """Everything a CNI call could change on the node, as raw text: links, addresses, routes of every
        table and neighbours (both families), and the IPAM store's file names and contents."""
        state = {}
        for key, argv in {"links": ("-d", "-j", "link", "show"), "addresses": ("-d", "-j", "addr", "show"),
                          "routes4": ("-4", "-d", "-j", "route", "show", "table", "all"),
                          "routes6": ("-6", "-d", "-j", "route", "show", "table", "all"),
                          "neighbours4": ("-4", "-j", "neigh", "show"),
                          "neighbours6": ("-6", "-j", "neigh", "show")}.items():
            state[key] = self.ns.run("ip", *argv).stdout
        directory = self.data_dir / network
        state["store"] = json.dumps({p.name: p.read_text() for p in sorted(directory.iterdir())}
                                    if directory.exists() else None)
        return state

    def cni(self, command: str, conf: dict, container_id: str = "", netns: str = "", ifname: str = "eth0",
            extra: dict[str, str] | None = None) -> tuple[int, dict | None, str]:
        return self.call(plugin_path(), self.env(command, container_id, netns, ifname, extra), conf)

    def add(self, conf: dict, container_id: str, pod, ifname: str = "eth0") -> dict:
        code, out, err = self.cni("ADD", conf, container_id, pod.path, ifname)
        assert code == 0, f"ADD {container_id} failed: {out} {err}"
        return out

    def links(self) -> list[str]:
        out = self.ns.run("ip", "-o", "link", "show").stdout
        return [line.split(": ")[1].split("@")[0] for line in out.splitlines()]

    def host_veths(self) -> list[str]:
        return [name for name in self.links() if name.startswith("bgp")]

    def routes(self, family: str = "-4") -> str:
        return self.ns.run("ip", family, "route", "show").stdout

    def reservations(self, network: str) -> dict[str, str]:
        directory = self.data_dir / network
        if not directory.exists():
            return {}
        return {p.name: p.read_text() for p in directory.iterdir()
                if p.name != "lock" and not p.name.startswith("last_reserved_ip.")}


def netconf(node: Node, name: str = "podnet", cidrs: list[str] | None = None, version: str = "1.1.0",
            **extra: object) -> dict:
    conf = {"cniVersion": version, "name": name, "type": "bgpnet-cni",
            "podCIDRs": cidrs or ["10.244.1.0/24"], "mtu": 1400, "dataDir": str(node.data_dir)}
    conf.update(extra)
    return conf


def ping(ns, address: str, count: int = 1) -> bool:
    """One ping with a generous per-packet wait; the caller may retry (the first IPv6 ping may wait for
    neighbour discovery)."""
    family = "-6" if ":" in address else "-4"
    proc = ns.run("ping", family, "-c", str(count), "-W", "5", address, check=False, timeout=30)
    return proc.returncode == 0


def ping_eventually(ns, address: str, attempts: int = 5) -> bool:
    return any(ping(ns, address) for _ in range(attempts))
