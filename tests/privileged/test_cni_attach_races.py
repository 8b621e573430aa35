"""ADD and DEL of one container ID racing each other, round after round, for several container IDs at once.

Without the per-container lock, a DEL landing between an ADD's reservation and its wiring releases the
address and the ADD then wires a pod the store calls free - the next ADD hands its address out again. With
it, after every round each container is either wired with its reservation or gone entirely, and no address
is ever on two pods."""

from __future__ import annotations

import json

import pytest
from test_cni_support import Node, netconf, plugin_path

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

IDS = 6
ROUNDS = 40


@pytest.fixture
def node(netns_group, tmp_path):
    return Node(netns_group, tmp_path)


def _pod_addresses(pod) -> list[str]:
    out = json.loads(pod.run("ip", "-j", "addr", "show").stdout)
    return [a["local"] for link in out if link["ifname"] == "eth0" for a in link.get("addr_info", [])
            if a["scope"] == "global"]


def _check_consistent(node: Node, pods: dict[str, object]) -> dict[str, list[str]]:
    """Every wired pod holds exactly its reserved addresses, every reservation belongs to a wired pod, and no
    address is on two pods. Returns container ID -> addresses of the wired pods."""
    reserved: dict[str, list[str]] = {}
    for ip, content in node.reservations("podnet").items():
        reserved.setdefault(content.split("\n")[0], []).append(ip)
    wired = {cid: sorted(_pod_addresses(pod)) for cid, pod in pods.items()}
    wired = {cid: ips for cid, ips in wired.items() if ips}
    assert {cid: sorted(ips) for cid, ips in reserved.items()} == wired
    everywhere = [ip for ips in wired.values() for ip in ips]
    assert len(everywhere) == len(set(everywhere))
    assert len(node.host_veths()) == len(wired)
    return wired


def test_concurrent_add_and_del_of_one_container_never_leave_a_pod_without_its_reservation(node):
    conf = netconf(node, cidrs=["10.246.0.0/24", "fd00:10:246::/64"])
    pods = {f"race{i}": node.pod(f"r{i}") for i in range(IDS)}
    outcomes = {"wired": 0, "gone": 0}
    for round_no in range(ROUNDS):
        procs = []
        for cid, pod in pods.items():
            # Alternate which one starts first, so both orders get their chance at the race window.
            order = ("ADD", "DEL") if round_no % 2 == 0 else ("DEL", "ADD")
            procs += [node.popen(plugin_path(), node.env(command, cid, pod.path), conf) for command in order]
        for proc in procs:
            proc.stdout.read()
            proc.wait(timeout=120)
        wired = _check_consistent(node, pods)
        outcomes["wired"] += len(wired)
        outcomes["gone"] += IDS - len(wired)
    # Both outcomes happened, so the rounds really raced DEL before ADD and ADD before DEL.
    assert outcomes["wired"] > 0 and outcomes["gone"] > 0, outcomes
    for cid, pod in pods.items():
        code, out, err = node.cni("DEL", conf, cid, pod.path)
        assert (code, out) == (0, None), err
    assert node.reservations("podnet") == {}
    assert node.host_veths() == []
    assert sorted(p.name for p in (node.data_dir / "podnet").iterdir()) == [
        "last_reserved_ip.0", "last_reserved_ip.1", "lock"]  # no attachment lock file left behind
