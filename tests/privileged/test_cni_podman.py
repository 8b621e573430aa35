"""A real runtime drives bgpnet-cni: podman 4.3 with its CNI backend starts two busybox containers on a
bgpnet-cni network inside a fresh "node" namespace; they get addresses, reach each other, and removing a
container releases its address.

Everything podman needs lives in the test's temp dir (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, vfs storage,
its own run and tmp dirs), so nothing system-wide changes. podman runs under `nsenter --net` rather than
`ip netns exec`: the latter remounts /sys for the namespace, which hides /sys/fs/cgroup from runc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cni_support import REF_PLUGINS, Node, plugin_path

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


@pytest.fixture
def node(netns_group, tmp_path):
    return Node(netns_group, tmp_path)

NETWORK = "bgpnetpm"


def _busybox_rootfs(root: Path) -> Path:
    rootfs = root / "rootfs"
    for sub in ("bin", "etc", "proc", "sys", "dev", "tmp"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")  # relative: valid inside the container
    return rootfs


class Podman:
    def __init__(self, node, root: Path, conflist: dict | None = None) -> None:
        self.node = node
        self.root = root
        for sub in ("cni-conf", "cni-bin", "run", "graph", "tmp"):
            (root / sub).mkdir(parents=True)
        (root / "cni-bin" / "bgpnet-cni").symlink_to(plugin_path())
        for chained in ("portmap", "bandwidth"):  # what the agent's conflist chains (bgpnet/cniconf.py)
            (root / "cni-bin" / chained).symlink_to(Path(REF_PLUGINS) / chained)
        (root / "containers.conf").write_text(f"""
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
tmp_dir = "{root}/tmp"
[network]
network_backend = "cni"
network_config_dir = "{root}/cni-conf"
cni_plugin_dirs = ["{root}/cni-bin"]
""")
        (root / "storage.conf").write_text(f"""
[storage]
driver = "vfs"
runroot = "{root}/run"
graphroot = "{root}/graph"
""")
        self.data_dir = root / "ipam"
        self.network = NETWORK if conflist is None else conflist["name"]
        conflist = conflist or {"cniVersion": "1.0.0", "name": NETWORK, "plugins": [
            {"type": "bgpnet-cni", "podCIDRs": ["10.244.12.0/24"], "mtu": 1400, "dataDir": str(self.data_dir),
             "logFile": str(root / "cni.log")}]}
        (root / "cni-conf" / f"{self.network}.conflist").write_text(json.dumps(conflist))
        self.env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(root / "storage.conf")}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nsenter", f"--net={self.node.ns.path}", "podman", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {proc.stderr}\n{self._cni_log()}")
        return proc

    def _cni_log(self) -> str:
        log = self.root / "cni.log"
        return log.read_text() if log.exists() else ""

    def reserved(self) -> set[str]:
        directory = self.data_dir / self.network
        return {p.name for p in directory.iterdir() if p.name[0].isdigit()} if directory.exists() else set()


@pytest.fixture
def podman(node, tmp_path):
    pm = Podman(node, tmp_path / "podman")
    try:
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False)
        # vfs layers and run state belong to this test only
        shutil.rmtree(pm.root, ignore_errors=True)


def test_podman_containers_get_addresses_reach_each_other_and_release_them(node, podman, tmp_path):
    rootfs = _busybox_rootfs(tmp_path)
    ips = {}
    for name in ("pma", "pmb"):
        podman("run", "-d", "--name", name, "--network", NETWORK, "--cap-add", "NET_RAW", "--rootfs",
               str(rootfs), "/bin/sleep", "600")
        template = "{{(index .NetworkSettings.Networks \"" + NETWORK + "\").IPAddress}}"
        ips[name] = podman("inspect", name, "--format", template).stdout.strip()
    assert ips["pma"].startswith("10.244.12.") and ips["pmb"].startswith("10.244.12.")
    assert ips["pma"] != ips["pmb"]
    assert podman.reserved() == set(ips.values())
    assert len(node.host_veths()) == 2
    ping = podman("exec", "pma", "ping", "-c", "1", "-W", "5", ips["pmb"], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    ping = podman("exec", "pmb", "ping", "-c", "1", "-W", "5", node.ip4, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    podman("rm", "--force", "--time", "0", "pma")
    assert podman.reserved() == {ips["pmb"]}
    assert len(node.host_veths()) == 1


def test_host_port_through_the_agents_conflist_is_reached_from_another_node(node, tmp_path):
    """The conflist the agent writes (bgpnet-cni, then portmap and bandwidth) under podman `-p`: a client in
    another namespace (the node's uplink neighbour, standing for another node) reaches the container's port at
    the node's address; removing the container removes portmap's NAT rules."""
    import ipaddress

    from bgpnet.cniconf import render_conflist
    from bgpnet.config import CniSettings
    from bgpnet.model import IPNetwork  # noqa: F401  (type of the pod CIDRs below)

    settings = CniSettings(mtu=1400, data_dir=str(tmp_path / "podman-hp" / "ipam"), log_file=str(tmp_path / "cni.log"))
    conflist = json.loads(render_conflist([ipaddress.ip_network("10.244.13.0/24")], settings))
    assert [p["type"] for p in conflist["plugins"]] == ["bgpnet-cni", "portmap", "bandwidth"]
    pm = Podman(node, tmp_path / "podman-hp", conflist)
    try:
        rootfs = _busybox_rootfs(tmp_path)
        (rootfs / "www").mkdir()
        (rootfs / "www" / "index.html").write_text("hello from the pod\n")
        pm("run", "-d", "--name", "web", "--network", pm.network, "-p", "18080:8080", "--rootfs", str(rootfs),
           "/bin/httpd", "-f", "-p", "8080", "-h", "/www")
        nat = subprocess.run(["ip", "netns", "exec", node.ns.name, "iptables-save", "-t", "nat"],
                             capture_output=True, text=True).stdout
        assert "--dport 18080" in nat, nat
        # Python's HTTP client in the client namespace (busybox wget crashes in a namespace here).
        fetch = ("import sys, urllib.request; "
                 "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())")
        fetched, proc = "", None
        for _ in range(50):  # httpd starts in the background
            proc = subprocess.run(["ip", "netns", "exec", node.tor.name, sys.executable, "-c", fetch,
                                   f"http://{node.ip4}:18080/"], capture_output=True, text=True)
            fetched = proc.stdout
            if fetched:
                break
            time.sleep(0.1)
        assert fetched == "hello from the pod\n", proc.stderr[-500:]
        pm("rm", "--force", "--time", "0", "web")
        nat = subprocess.run(["ip", "netns", "exec", node.ns.name, "iptables-save", "-t", "nat"],
                             capture_output=True, text=True).stdout
        assert "--dport 18080" not in nat, nat
        assert pm.reserved() == set()
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False)
        shutil.rmtree(pm.root, ignore_errors=True)
