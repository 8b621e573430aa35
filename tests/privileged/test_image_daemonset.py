"""bgpnet's image built with podman and its DaemonSet pod run on three lab nodes, as a kubelet would run it.

The image is built once for the module from the repository's Dockerfile on a Debian 12 base made from
Debian's packages (bgpnet.lab.image; the base tarball is cached in .cache/image/ across runs). Each lab node
(a network namespace, with a directory standing for its file system) then gets the pod of
manifests/30-daemonset.yaml, translated container by container into `podman run` (bgpnet.lab.pod_template):
the init container installs the CNI bundle into the node's CNI bin dir, the agent runs in the node's network
namespace with the ConfigMap of manifests/20-configmap.yaml, a service-account token and the API stand-in's CA.
Pods are wired by the plugin the init container installed, with no python3 visible to it, and ping each other
across nodes.

One cluster for the module; the tests read it in order.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from bgpnet.lab import commands
from bgpnet.lab.cluster import Cluster, ClusterNode, executable, source_root, wait_for
from bgpnet.lab.commands import Progress
from bgpnet.lab.daemonset import cni_conf_dir, installed_plugin, pod_spec, start_agent_pod
from bgpnet.lab.image import BASE_IMAGE, base_tarball, build_image, host_recipe, import_base
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.pod_runner import RunningPod, exec_in, logs, probe, stop_pod
from bgpnet.lab.pod_template import HttpProbe
from bgpnet.lab.podman import Podman
from bgpnet.lab.state import StateStore
from bgpnet.lab.topology import plan_lab

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

ROOT = source_root()
NODES = (1, 2, 3)

# The runtime's view when it executes the plugin: a mount namespace in which the machine's python3 (Debian's
# /usr/bin/python3 and its stdlib; /bin is a symlink to /usr/bin) is covered by empty tmpfs mounts, and a PATH
# holding only the CNI bin dir. The plugin then starts only if its bundle really carries its interpreter.
# /usr/bin goes last: `mount` itself lives there.
HIDE_PYTHON = r"""set -e
for d in /usr/local/bin /usr/lib/python3 /usr/lib/python3.11 /usr/bin; do
  if [ -d "$d" ]; then mount -n -t tmpfs -o size=1m nopython "$d"; fi
done
PATH=${1%/*}; export PATH
for p in /usr/bin/python3 /bin/python3 /usr/local/bin/python3 /usr/lib/python3.11/os.py; do
  if [ -e "$p" ]; then echo "$p is still visible" >&2; exit 97; fi
done
exec "$@"
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    pm = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False)
        pm("system", "reset", "--force", check=False, timeout=300)
        shutil.rmtree(pm.root, ignore_errors=True)


@pytest.fixture(scope="module")
def image(podman):
    spec = pod_spec()
    (ref,) = {c["image"] for c in spec["containers"] + spec["initContainers"]}
    import_base(podman, base_tarball(ROOT / ".cache" / "image", host_recipe()))
    built = build_image(podman, ROOT, ref, base=BASE_IMAGE)
    print(f"\nimage {ref}: built in {built.build_seconds:.0f} s, {built.size_bytes / 1e6:.0f} MB")
    return built


@pytest.fixture(scope="module")
def lab(image, podman, tmp_path_factory):
    spec = pod_spec()
    group = NetnsGroup()
    pods: list[RunningPod] = []
    try:
        cluster = Cluster(group, tmp_path_factory.mktemp("imagelab"), in_cluster=True)
        started = time.monotonic()
        for i in NODES:
            node = cluster.add_node(i, start_agent=False)
            pods.append(start_agent_pod(cluster, node, podman, spec, f"bgpnet-agent-{node.name}"))
        yield cluster, pods, started
    finally:
        for pod in pods:
            stop_pod(podman, pod)
        group.close()


def _agent_alive(podman: Podman, pod: RunningPod) -> None:
    state = podman("inspect", "--format", "{{.State.Status}}", pod.container_name("agent")).stdout.strip()
    if state != "running":
        raise AssertionError(f"{pod.name}'s agent container is {state}:\n{logs(podman, pod, 'agent')[-3000:]}")


def _probe_ok(podman: Podman, pod: RunningPod, check: HttpProbe) -> bool:
    _agent_alive(podman, pod)  # a crashed agent fails at once, with its log, instead of after the timeout
    return probe(pod.node, check) == 200


def _without_python(plugin: str) -> list[str]:
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE_PYTHON, "sh", plugin]


def _installed_plugin(cluster: Cluster, node: ClusterNode) -> str:
    return str(installed_plugin(cluster, node, pod_spec()))


def test_image_carries_the_agent_and_a_cni_bundle(image, podman):
    assert image.size_bytes > 100_000_000
    out = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image.ref, "-c",
                 "bgpnet --version && python3 -c 'import exabgp, kubernetes, pyroute2; print(\"deps ok\")' "
                 "&& du -sm /opt/bgpnet-cni && cat /opt/bgpnet-cni/BUNDLE_ID /opt/bgpnet-cni/PYTHON").stdout
    assert "deps ok" in out
    bundle_mb = int(re.search(r"^(\d+)\s+/opt/bgpnet-cni$", out, re.M).group(1))
    assert 10 < bundle_mb < 80, out
    print(f"\nCNI bundle: {bundle_mb} MB; {out.strip()}")


def test_init_container_installed_the_bundle_on_every_node(lab):
    cluster, pods, _ = lab
    for pod in pods:
        node = cluster.nodes[pod.node.name]
        bin_dir = installed_plugin(cluster, node, pod_spec()).parent
        assert bin_dir == node.workdir / "root/opt/cni/bin"  # the cni-bin hostPath, under the node's root
        (bundle_id,) = [p.name for p in (bin_dir / "bgpnet").iterdir()]
        assert f"installed {bin_dir}/bgpnet-cni (bundle {bundle_id})" in pod.init_output["install-cni"]
        bundle = bin_dir / "bgpnet" / bundle_id
        assert (bundle / ".complete").exists() and (bundle / "app" / "cni" / "main.py").exists()
        shebang = (bin_dir / "bgpnet-cni").read_text().splitlines()[0]
        # The shebang names the interpreter by its host path: the node's CNI bin dir, not the container's mount.
        assert shebang == f"#!{bundle}/bin/{(bundle / 'PYTHON').read_text().strip()} -IS"
        assert (bin_dir / "bgpnet-cni").stat().st_mode & 0o111
        # The reference plugins the conflist chains, installed because this node's bin dir had none.
        for chained in ("portmap", "bandwidth"):
            assert f"installed {bin_dir}/{chained}" in pod.init_output["install-cni"]
            assert (bin_dir / chained).stat().st_mode & 0o111
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"\ninstalled bundle on a node: {size / 1e6:.1f} MB in {bundle}")


def test_agent_probes_answer_on_every_node(lab, podman):
    cluster, pods, _ = lab
    for pod in pods:
        run = pod.containers["agent"]
        assert {p.kind for p in run.probes} == {"liveness", "readiness"}
        for check in run.probes:
            wait_for(lambda c=check, p=pod: _probe_ok(podman, p, c), 90,
                     what=f"{pod.name} {check.kind} {check.path} -> 200")


def test_nodes_exchanged_routes(lab, podman):
    cluster, pods, _ = lab

    def converged() -> bool:
        for pod in pods:
            _agent_alive(podman, pod)
        return all(set(n.bgp_routes()) == {m.pod_cidr for m in cluster.nodes.values() if m is not n}
                   for n in cluster.nodes.values())

    wait_for(converged, 90, what="every node to learn the others' pod CIDRs")
    n1, n2 = cluster.nodes["node1"], cluster.nodes["node2"]
    assert f"via {n2.ip} dev eth0" in n1.bgp_routes()[n2.pod_cidr]


def test_hiding_python_stops_a_plugin_that_needs_the_hosts_python(lab):
    # The control: the development console script's shebang is the venv's python, a link to /usr/bin/python3.
    cluster, _, _ = lab
    node = cluster.nodes["node1"]
    env = {**os.environ, "CNI_COMMAND": "VERSION"}
    proc = subprocess.run(node.ns.argv(_without_python(executable("bgpnet-cni"))), env=env, input="{}",
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "supportedVersions" not in proc.stdout, proc
    proc = subprocess.run(node.ns.argv(_without_python(_installed_plugin(cluster, node))), env=env, input="{}",
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "supportedVersions" in proc.stdout, proc


def test_pods_wired_by_the_installed_plugin_without_python_ping_across_nodes(lab):
    cluster, _, started = lab
    for node in cluster.nodes.values():
        pod = cluster.add_pod(node, conf_dir=cni_conf_dir(cluster, node, pod_spec()),
                              plugin_argv=_without_python(_installed_plugin(cluster, node)))
        assert pod.ip.startswith(node.pod_cidr.rsplit(".", 1)[0] + ".")
        # The IPAM reservation is in the node's own data dir, as the ConfigMap (relocated) says.
        assert (node.workdir / "root" / "var/lib/cni/bgpnet").is_dir()
    pods = cluster.all_pods()
    matrix = {(a.name, b.name): wait_for(lambda a=a, b=b: cluster.ping(a, b.ip), 30, 0.2,
                                         what=f"{a.name} -> {b.name} ({b.ip})")
              for a in pods for b in pods if a is not b}
    assert len(matrix) == 6 and all(matrix.values())
    print(f"\npod start to green 3-node matrix: {time.monotonic() - started:.1f} s")


def test_bgpnet_status_inside_the_agent_container_lists_its_peers(lab, podman):
    cluster, pods, _ = lab
    for pod in pods:
        out = exec_in(podman, pod, "agent", "bgpnet", "status")
        others = [n for n in cluster.nodes.values() if n.name != pod.node.name]
        for other in others:
            line = next((ln for ln in out.splitlines() if ln.startswith(other.ip)), "")
            assert "Established" in line, out
        assert cluster.nodes[pod.node.name].pod_cidr in out, out


def test_lab_up_with_the_image_runs_agents_as_containers_and_down_removes_them(image, podman, tmp_path):
    store = StateStore(tmp_path / "state")
    out, log = io.StringIO(), io.StringIO()
    code = commands.up(plan_lab(2, 1, "mesh", "bird"), store, as_json=True, out=out, progress=Progress(log),
                       image=image.ref, podman=podman)
    try:
        assert code == 0, log.getvalue()
        doc = json.loads(out.getvalue())
        assert doc["matrix"]["allReached"] and len(doc["matrix"]["pairs"]) == 2
        containers = [n["agentContainers"] for n in doc["nodes"]]
        assert containers == [[f"{doc['tag']}-node{i}-agent"] for i in (1, 2)]
        running = podman("ps", "--format", "{{.Names}}").stdout.split()
        assert {c for names in containers for c in names} <= set(running)
        status_out = io.StringIO()
        assert commands.status(store, as_json=True, out=status_out) == 0
        shown = {p["name"]: p["running"] for p in json.loads(status_out.getvalue())["processes"]}
        assert {f"container {c[0]}": True for c in containers}.items() <= shown.items()
    finally:
        assert commands.down(store, progress=lambda _m: None) == 0
    left = podman("ps", "--all", "--format", "{{.Names}}").stdout.split()
    assert not [name for name in left if name.startswith(doc["tag"])]
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith(doc["tag"])]
