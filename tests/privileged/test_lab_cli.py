"""`bgpnet lab` end to end, run exactly as a user runs it: the CLI in a subprocess, as root.

Each test uses its own state directory, so it never meets a lab someone else has up. After every `down` (and
every interrupted `up`) the test checks, from the state file it read while the lab was running, that every
recorded namespace and process is gone, and that no namespace carrying the lab's tag exists at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bgpnet.lab.cluster import wait_for
from bgpnet.lab.processes import ProcessId, is_running
from bgpnet.lab.state import LabState

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

BGPNET = str(Path(sys.executable).parent / "bgpnet")


@pytest.fixture
def state_dir(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    state_dir = tmp_path / "lab"
    yield state_dir
    # Whatever the test did, leave nothing behind (a no-op when the test already brought the lab down).
    subprocess.run([BGPNET, "lab", "--state-dir", str(state_dir), "down"], capture_output=True, timeout=60)


def lab(state_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BGPNET, "lab", "--state-dir", str(state_dir), *args], capture_output=True, text=True,
                          timeout=timeout)


def recorded(state_dir: Path) -> LabState:
    return LabState.from_json((state_dir / "state.json").read_text())


def assert_nothing_left(state: LabState, state_dir: Path) -> None:
    assert [n for n in state.namespaces if Path(f"/run/netns/{n}").exists()] == []
    assert [n for n in os.listdir("/run/netns") if n.startswith(state.tag)] == []
    assert [p for p in state.processes if is_running(p)] == []
    assert not Path(state.workdir).exists()
    assert not state_dir.exists()


def up_json(state_dir: Path, *args: str) -> dict:
    proc = lab(state_dir, "up", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # --json: stdout holds nothing but the document


def test_mesh_lab_comes_up_all_green_and_down_leaves_nothing(state_dir):
    lab_json = up_json(state_dir, "--nodes", "3")
    state = recorded(state_dir)
    assert lab_json["mode"] == "mesh" and lab_json["tor"] is None
    assert [(n["name"], n["address"], n["asn"], n["podCIDR"], len(n["pods"])) for n in lab_json["nodes"]] == [
        ("node1", "172.31.0.11", 64512, "10.244.1.0/24", 2),
        ("node2", "172.31.0.12", 64512, "10.244.2.0/24", 2),
        ("node3", "172.31.0.13", 64512, "10.244.3.0/24", 2)]
    assert lab_json["matrix"]["allReached"] and len(lab_json["matrix"]["pairs"]) == 30
    for node in lab_json["nodes"]:
        others = {n["podCIDR"]: n["address"] for n in lab_json["nodes"] if n is not node}
        for cidr, via in others.items():
            route = f"{cidr} via {via} dev eth0 proto bgpnet"
            assert any(line.startswith(route) for line in lab_json["routes"][node["name"]]), route
    assert "pod-to-pod" not in json.dumps(lab_json)  # scripts get values, not the rendered text
    print(f"\nMEASURED lab up --nodes 3 (mesh): {lab_json['upSeconds']} s")

    status = lab(state_dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "all 30 pod pairs reach each other" in status.stdout
    assert status.stdout.count(" running ") == 4  # the API stand-in and three agents
    assert all(pod["namespace"] in status.stdout for n in lab_json["nodes"] for pod in n["pods"])

    # Every node's agent, seen from node1 through the API's Node list.
    everyone = subprocess.run(["ip", "netns", "exec", lab_json["nodes"][0]["namespace"], BGPNET, "status",
                               "--all-nodes", "--kubeconfig", lab_json["api"]["kubeconfig"]],
                              capture_output=True, text=True, timeout=60)
    assert everyone.returncode == 0, everyone.stdout + everyone.stderr
    assert everyone.stdout.startswith("3 nodes, 3 agents answered")
    assert sum(" Established " in line for line in everyone.stdout.splitlines()) == 6  # 3 nodes x 2 peers
    print(f"\nbgpnet status --all-nodes:\n{everyone.stdout}")

    # natOutgoing is on by default in a mesh (nothing outside knows the pod CIDRs): bgpnet's own nft table.
    nat = subprocess.run(["ip", "netns", "exec", lab_json["nodes"][0]["namespace"], "nft", "list", "table", "inet",
                          "bgpnet"], capture_output=True, text=True)
    assert nat.returncode == 0 and "ip saddr @pods4 ip daddr != @cluster4 masquerade" in nat.stdout, nat.stderr
    # Every agent recorded its sessions coming up as Events on its Node, as `kubectl describe node` shows them.
    from kubernetes import client, config

    from bgpnet.lab.netns import entered

    api = client.CoreV1Api(config.new_client_from_config(config_file=lab_json["api"]["kubeconfig"]))

    def session_up_events() -> int:
        with entered(f"/run/netns/{lab_json['nodes'][0]['namespace']}"):  # the API lives inside the lab
            return len(api.list_namespaced_event("default", field_selector="reason=BGPSessionUp").items)

    wait_for(lambda: session_up_events() == 6, 10, what="six BGPSessionUp events")

    down = lab(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(state, state_dir)
    assert lab(state_dir, "status").returncode == 3  # no lab


def test_tor_lab_with_bird_comes_up_all_green(state_dir):
    lab_json = up_json(state_dir, "--nodes", "3", "--mode", "tor")
    state = recorded(state_dir)
    assert lab_json["tor"]["kind"] == "bird"
    assert (lab_json["tor"]["address"], lab_json["tor"]["asn"]) == ("172.31.0.1", 65000)
    assert [n["asn"] for n in lab_json["nodes"]] == [65001, 65002, 65003]
    assert lab_json["matrix"]["allReached"] and len(lab_json["matrix"]["pairs"]) == 30
    # Every node peers with BIRD only, and BIRD keeps the originating node as next hop on the shared segment.
    assert sum(line.endswith("Established") for line in lab_json["torProtocols"]) == 3
    assert any(line.startswith("10.244.2.0/24 via 172.31.0.12 dev eth0 proto bgpnet")
               for line in lab_json["routes"]["node1"])
    for node in lab_json["nodes"]:
        established = subprocess.run(["ip", "netns", "exec", node["namespace"], "ss", "-tnH", "state",
                                      "established", "( dport = :179 or sport = :179 )"],
                                     capture_output=True, text=True).stdout
        assert [line.split()[-1] for line in established.splitlines()] == ["172.31.0.1:179"]
    # The sample LoadBalancer Service: an address from the lab's pool, announced by node1 alone (its endpoints
    # are node1's pods, externalTrafficPolicy Local), in the ToR's table.
    sample = lab_json["sampleService"]
    assert sample["name"] == "default/hello" and sample["address"].startswith("198.51.100."), sample
    assert [line.split()[:3] for line in sample["torRoute"]] == [[sample["address"], "via", "172.31.0.11"]], sample
    print(f"\nMEASURED lab up --nodes 3 --mode tor: {lab_json['upSeconds']} s")

    def bfd_up_at_the_tor() -> int:
        status = json.loads(lab(state_dir, "status", "--json").stdout)
        return sum(line.split()[2:3] == ["Up"] for line in status["torBfdSessions"])

    # BFD beside every session: the ToR sees all three nodes Up (a second or two after BGP, at 1 packet/s).
    wait_for(lambda: bfd_up_at_the_tor() == 3, 30, 0.5, "three BFD sessions Up at the ToR")
    assert lab(state_dir, "down").returncode == 0
    assert_nothing_left(state, state_dir)


def test_external_tor_waits_for_the_operators_router_and_down_stops_it(state_dir):
    lab_json = up_json(state_dir, "--nodes", "2", "--pods-per-node", "1", "--mode", "tor", "--tor", "external")
    state = recorded(state_dir)
    tor = lab_json["tor"]
    assert tor["kind"] == "external" and tor["birdSocket"] is None
    assert "172.31.0.1/24" in subprocess.run(["ip", "-n", tor["namespace"], "addr", "show", "eth0"],
                                             capture_output=True, text=True).stdout
    assert not lab_json["matrix"]["allReached"]  # nobody routes yet
    # The operator starts their own router (here BIRD with the example config the lab wrote), as a daemon
    # that the lab never recorded: `down` must still stop it, since it runs in the lab's namespace.
    subprocess.run(["ip", "netns", "exec", tor["namespace"], "bird", "-c", tor["birdConfig"],
                    "-s", tor["birdConfig"] + ".ctl"], check=True)
    wait_for(lambda: lab(state_dir, "status").returncode == 0, 60, 0.5, "the matrix to turn green")
    bird_pids = subprocess.run(["ip", "netns", "pids", tor["namespace"]], capture_output=True,
                               text=True).stdout.split()
    assert bird_pids
    assert lab(state_dir, "down").returncode == 0
    assert_nothing_left(state, state_dir)
    assert [p for p in bird_pids if Path(f"/proc/{p}").exists()] == []


def start_up_and_wait_for(state_dir: Path, line_part: str) -> tuple[subprocess.Popen, LabState]:
    """Start `lab up` and return once its progress shows `line_part` (the build is then half-way)."""
    # SIGINT back to its default in the child: a shell starting the test suite in the background (`cmd &`)
    # makes its jobs ignore SIGINT, and an ignored SIGINT stays ignored across exec (Python then installs no
    # KeyboardInterrupt handler), which would make the Ctrl-C below a no-op.
    proc = subprocess.Popen([BGPNET, "lab", "--state-dir", str(state_dir), "up", "--nodes", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line_part in line:
            break
    else:
        raise AssertionError(f"`lab up` ended before {line_part!r}: {''.join(seen)}")
    return proc, recorded(state_dir)


def test_ctrl_c_during_up_removes_everything(state_dir):
    proc, state = start_up_and_wait_for(state_dir, "node2:")
    assert state.namespaces and state.processes  # half-way: something to clean up
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; removing everything the lab made" in err
    # `state` is the record as it was at the interrupt's moment or earlier; assert_nothing_left also checks
    # that no namespace with the lab's tag exists, which covers anything created after that read.
    assert_nothing_left(state, state_dir)


def test_a_killed_up_is_cleaned_up_by_down(state_dir):
    proc, _ = start_up_and_wait_for(state_dir, "wiring")
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the state file is all that is left
    proc.wait(timeout=10)
    time.sleep(0.2)
    state = recorded(state_dir)
    assert len(state.processes) >= 4  # the API stand-in and three agents were recorded as they started
    assert any(is_running(p) for p in state.processes)
    down = lab(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(state, state_dir)


def test_recycled_pid_in_the_record_is_not_killed(state_dir):
    # A record whose PID now belongs to another process (different start time) must leave that process alone.
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state_dir.mkdir()
        tag = "bgplabfake01"
        fake = LabState(tag=tag, workdir=str(state_dir / tag), processes=[ProcessId(victim.pid, 1, "old agent")])
        (state_dir / "state.json").write_text(fake.to_json())
        assert lab(state_dir, "down").returncode == 0
        assert victim.poll() is None
        assert not state_dir.exists()
    finally:
        victim.kill()
        victim.wait()
