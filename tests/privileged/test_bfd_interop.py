"""BFD between real agents and BIRD2 ToRs (`protocol bfd`, `bfd on` per BGP neighbour), and between mesh nodes.

Two racks' worth of wiring in network namespaces: nodes 1 and 2 (eBGP, AS per node) each have a link to tor1
(AS 65101) and one to tor2 (AS 65102), so each node reaches the other's pod CIDR over ECMP. BFD runs at
300 ms x 3 on every session: a silent failure is detected in 900 ms, where the 9 s hold time is the only
detector without it. A failure is silent on purpose — an nftables drop of everything in a namespace, or
SIGSTOP of a node's agent, ExaBGP and BFD process — never a link down or a closed TCP connection, which BGP
notices by itself. Each test prints its MEASURED figures; timings are reported, not asserted, beyond telling
BFD (about 1 s) from the hold timer (9 s).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import pytest

from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.processes import descendants
from tests.privileged.faults_support import Stream, agent_status
from tests.privileged.tor_topology import CLUSTER_CIDRS, TorLab, bird_common, bird_neighbor, link_addresses, wait_for

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

HOLD_S = 9.0
CONFIG = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
          "startupGracePeriod": 5, "bfd": {"enabled": True, "minRx": 300, "minTx": 300, "multiplier": 3}}
TOR_ASN = {1: 65101, 2: 65102}
BIRD_BFD = """
protocol bfd {{
  interface "*" {{ min rx interval {rx} ms; min tx interval {tx} ms; multiplier {mult}; }};
}}
"""
# BIRD as graceful restart helper for the nodes, so an agent restart is a test of whether BFD keeps out of
# graceful restart's way.
BIRD_GR = "graceful restart on; graceful restart time 30; bfd on;"

# Everything in the namespace dropped, forwarded traffic included: the link stays up, nothing gets through.
BLACKHOLE = """table inet bfd_blackhole {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
  chain through { type filter hook forward priority 0; policy drop; }
}
"""


def tor_config(lab: TorLab, index: int, rx: int = 300, tx: int = 300, mult: int = 3) -> str:
    router = lab.routers[f"tor{index}"]
    sessions = "".join(bird_neighbor(f"n{i}", TOR_ASN[index], link_addresses(i, index - 1)[1], 65000 + i,
                                     extra=BIRD_GR) for i in (1, 2))
    return bird_common(router) + BIRD_BFD.format(rx=rx, tx=tx, mult=mult) + sessions


def node_peers(i: int, **tor1_options: object) -> str:
    return json.dumps([{"address": link_addresses(i, 0)[0], "asn": TOR_ASN[1], **tor1_options},
                       {"address": link_addresses(i, 1)[0], "asn": TOR_ASN[2]}])


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root")
    group = NetnsGroup()
    try:
        lab = TorLab(group, tmp_path, CONFIG)
        tors = [lab.add_router(f"tor{i}", i) for i in (1, 2)]
        for i in (1, 2):
            lab.add_node(i, tors, labels={"bgpnet.io/asn": str(65000 + i)},
                         annotations={"bgpnet.io/peers": node_peers(i)}, metrics=True)
        for i, tor in enumerate(tors, start=1):
            lab.start_bird(tor, tor_config(lab, i))
        wait_for(lambda: lab.check_agents() or ecmp(lab), 60, what="ECMP routes via both ToRs")
        wait_for(lambda: all(bfd_states(n) == {"Up"} for n in lab.nodes.values()), 30, what="BFD Up everywhere")
        for node in lab.nodes.values():
            lab.add_pod(node)
        yield lab
    finally:
        group.close()


def ecmp(lab: TorLab) -> bool:
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]
    return (len(n1.gateways("10.244.2.0/24")) == 2 and len(n2.gateways("10.244.1.0/24")) == 2)


def bfd_states(node) -> set[str]:
    return {s["state"] for s in agent_status(node).get("bfd", [])} or {"none"}


def tor_has(lab: TorLab, tor: str, prefix: str) -> bool:
    return prefix in lab.routers[tor].ns.run("ip", "route", "show", prefix).stdout


def seconds_until(predicate: Callable[[], bool], timeout: float, since: float) -> float:
    """Poll every 10 ms; how long after `since` the predicate held."""
    wait_for(predicate, timeout, interval=0.01, what="the change")
    return time.monotonic() - since


def freeze(pid: int, sig: int) -> list[int]:
    """SIGSTOP/SIGCONT a node's whole control plane: its agent, ExaBGP and its helper, the BFD process."""
    pids = [pid, *descendants(pid)]
    for p in pids:
        os.kill(p, sig)
    return pids


def test_black_holed_tor_is_detected_by_bfd_and_ecmp_shrinks_without_stopping_pod_traffic(lab, tmp_path):
    # (a) and (c): tor1 silent. Each node's ECMP route loses tor1 in about the detection time, tor1 loses the
    # nodes' routes as fast, pod traffic continues over tor2.
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]
    stream = Stream(lab, n1.pods[0], n2.pods[0], tmp_path, rate=500)
    time.sleep(1)
    lab.routers["tor1"].ns.run("nft", "-f", "-", input=BLACKHOLE)
    start = time.monotonic()
    tor1_gw = link_addresses(1, 0)[0]
    node_s = seconds_until(lambda: tor1_gw not in n1.gateways("10.244.2.0/24"), HOLD_S - 1, start)
    tor_s = seconds_until(lambda: not tor_has(lab, "tor1", "10.244.1.0/24"), HOLD_S - 1, start)
    time.sleep(1)
    result = stream.finish()
    print(f"\nMEASURED black-holed ToR, BFD 300 ms x 3 (detection 900 ms): node1 dropped the path via tor1 after "
          f"{node_s * 1000:.0f} ms, tor1 dropped node1's route after {tor_s * 1000:.0f} ms; "
          f"500 pps pod stream over ECMP: sent={result.sent} lost={result.lost}")
    assert n1.gateways("10.244.2.0/24") == {link_addresses(1, 1)[0]}  # multipath shrank to tor2
    assert n2.gateways("10.244.1.0/24") == {link_addresses(2, 1)[0]}
    assert lab.ping(n1.pods[0], n2.pods[0].ips[0])  # pods still reach each other through tor2
    assert result.received > 0 and result.lost < result.sent / 2
    status = {s["peer"]: s for s in agent_status(n1)["bfd"]}
    assert status[tor1_gw]["state"] == "Down" and status[tor1_gw]["holding_bgp_down"]
    assert status[tor1_gw]["diag"] == 1  # detection time expired: silence
    assert "BFD session down: peer declared dead" in lab.agent_log(n1)

    lab.routers["tor1"].ns.run("nft", "delete", "table", "inet", "bfd_blackhole")
    wait_for(lambda: lab.check_agents() or ecmp(lab), 60, what="ECMP back once BFD and BGP are Up")
    status = {s["peer"]: s for s in agent_status(n1)["bfd"]}
    assert status[tor1_gw]["state"] == "Up" and not status[tor1_gw]["holding_bgp_down"]


def test_silently_stopped_node_is_dropped_by_both_tors_and_the_other_node(lab):
    # (b): node1's agent, ExaBGP and BFD process frozen (SIGSTOP): no TCP close, no NOTIFICATION, no AdminDown.
    n1, n2 = lab.nodes["node1"], lab.nodes["node2"]
    assert n1.agent is not None
    pids = freeze(n1.agent.pid, signal.SIGSTOP)
    start = time.monotonic()
    try:
        tors_s = seconds_until(lambda: not tor_has(lab, "tor1", "10.244.1.0/24")
                               and not tor_has(lab, "tor2", "10.244.1.0/24"), HOLD_S - 1, start)
        node2_s = seconds_until(lambda: "10.244.1.0/24" not in n2.routes(), HOLD_S - 1, start)
        print(f"\nMEASURED node1 frozen, BFD 300 ms x 3: both ToRs dropped its pod CIDR after {tors_s * 1000:.0f} ms, "
              f"node2 after {node2_s * 1000:.0f} ms (hold time {HOLD_S:.0f} s)")
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    wait_for(lambda: lab.check_agents() or ecmp(lab), 60, what="node1 back on both ToRs")


def test_timers_are_negotiated_live_with_different_intervals_on_each_side(lab):
    # (d): node1 asks tor1 for minRx 200 / minTx 100 / x4 (a Node annotation, changed live), tor1 is
    # reconfigured to rx 300 / tx 500 / x3. Both sides re-time the running session with Poll sequences.
    n1 = lab.nodes["node1"]
    tor1_gw, n1_addr = link_addresses(1, 0)[0], link_addresses(1, 0)[1]
    lab.reconfigure_bird(lab.routers["tor1"], tor_config(lab, 1, rx=300, tx=500, mult=3))
    lab.annotate(n1, {"bgpnet.io/peers": node_peers(1, bfd={"minRx": 200, "minTx": 100, "multiplier": 4})})

    def ours() -> dict:
        return next((s for s in agent_status(n1).get("bfd", []) if s["peer"] == tor1_gw), {})

    # We detect after tor1's x3 x max(our 200, its 500) = 1500 ms and send every max(our 100, its 300) = 300 ms.
    wait_for(lambda: ours().get("negotiated_detect_ms") == 1500.0 and ours().get("tx_ms") == 300.0, 30,
             what=f"negotiated timers on node1, last {ours()}")
    assert ours()["configured_detect_ms"] == 800.0 and ours()["state"] == "Up"
    # tor1 sends every max(its 500, our 200) = 0.5 s and times us out after our x4 x max(its 300, our 100).
    line = ""

    def bird_line() -> str:
        nonlocal line
        out = lab.routers["tor1"].birdc("show", "bfd", "sessions")
        line = next((x for x in out.splitlines() if x.strip().startswith(n1_addr)), "")
        return line

    wait_for(lambda: bird_line().split()[-2:] == ["0.500", "1.200"], 30, what=f"BIRD's timers, last {line!r}")
    assert "Up" in line.split()
    assert bfd_states(n1) == {"Up"}  # the re-timing took no session down
    assert agent_status(n1)["bfd"][0]["state_changes"].get("Down", 0) == 0


def test_agent_stop_tells_the_tors_admin_down_at_once(lab):
    # On SIGTERM (a DaemonSet rollout) the BFD process sends AdminDown before it exits, so peers learn at once
    # that BFD was stopped rather than the path failing (RFC 5882 §3.2: not a failure; a compliant peer keeps
    # the BGP session's graceful restart, see test_bfd_mesh.py). BIRD 2.0.12, Debian 12's, tears its BGP
    # session down on any BFD Up -> Down, AdminDown included: at such a ToR an agent restart with BFD on costs
    # the node's routes until its sessions are back, measured here.
    n1 = lab.nodes["node1"]
    n1_addr = link_addresses(1, 0)[1]
    assert n1.agent is not None

    def tor1_bfd_state() -> str:
        out = lab.routers["tor1"].birdc("show", "bfd", "sessions")
        line = next((x for x in out.splitlines() if x.strip().startswith(n1_addr)), "")
        return line.split()[2] if len(line.split()) > 2 else ""

    start = time.monotonic()
    lab.group.stop_process(n1.agent, timeout=20)
    n1.agent = None
    down_s = seconds_until(lambda: tor1_bfd_state() == "Down", HOLD_S - 1, start)
    # Faster than detection (900 ms after the last packet) could have made it: the AdminDown arrived.
    assert down_s < 0.85, down_s
    gone_s = seconds_until(lambda: not tor_has(lab, "tor1", "10.244.1.0/24"), HOLD_S - 1, start)
    lab.start_agent(n1)
    back_s = seconds_until(lambda: tor_has(lab, "tor1", "10.244.1.0/24") and tor_has(lab, "tor2", "10.244.1.0/24"),
                           60, start)
    print(f"\nMEASURED agent stopped: tor1's BFD session Down after {down_s * 1000:.0f} ms (AdminDown), BIRD 2.0.12 "
          f"dropped node1's route after {gone_s * 1000:.0f} ms; route back {back_s:.1f} s after the stop, the "
          "agent restarted at once")
    wait_for(lambda: lab.check_agents() or (ecmp(lab) and bfd_states(n1) == {"Up"}), 60,
             what="node1's sessions back after its restart")
