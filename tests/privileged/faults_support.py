"""Fault-injection helpers: a counted UDP stream between pods, polling helpers, the agent's status document.

The stream is plain Python in the pod namespaces: the sender numbers every datagram and paces them at a fixed
rate until a stop file appears; the receiver records every sequence number it sees. Lost = sent − distinct
received, which counts packets dropped anywhere (no route, stale sweep, neighbour resolution).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bgpnet.lab.cluster import Cluster, ClusterNode, Pod
from tests.privileged.tor_topology import TorLab

SENDER = r"""
import os, socket, sys, time
dst, port, rate, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seq, start = 0, time.monotonic()
while not os.path.exists(stop):
    try:
        s.sendto(seq.to_bytes(8, "big"), (dst, port))
    except OSError:
        pass  # no route for a moment still counts as lost: the receiver never sees it
    seq += 1
    delay = start + seq / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(seq, flush=True)
"""

RECEIVER = r"""
import socket, sys
port, quiet = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
print("ready", flush=True)
seen, started = set(), False
s.settimeout(60)
while True:
    try:
        data, _ = s.recvfrom(64)
    except socket.timeout:
        break
    seen.add(int.from_bytes(data[:8], "big"))
    if not started:
        started = True
        s.settimeout(quiet)
print(len(seen), max(seen) if seen else -1, flush=True)
"""


@dataclass
class StreamResult:
    sent: int
    received: int

    @property
    def lost(self) -> int:
        return self.sent - self.received


class Stream:
    """A counted UDP stream from `src` to `dst` at `rate` packets/s."""

    def __init__(self, cluster: Cluster | TorLab, src: Pod, dst: Pod, workdir: Path, rate: int = 500,
                 port: int = 40000) -> None:
        dst_ip = getattr(dst, "ip", None) or dst.ips[0]  # cluster pods have .ip, ToR-lab pods .ips
        self.stop_file = workdir / "stream.stop"
        self.stop_file.unlink(missing_ok=True)
        self.receiver = cluster.group.track(subprocess.Popen(
            dst.ns.argv([sys.executable, "-S", "-c", RECEIVER, str(port), "3"]), stdout=subprocess.PIPE, text=True))
        assert self.receiver.stdout.readline().strip() == "ready"
        self.sender = cluster.group.track(subprocess.Popen(
            src.ns.argv([sys.executable, "-S", "-c", SENDER, dst_ip, str(port), str(rate), str(self.stop_file)]),
            stdout=subprocess.PIPE, text=True))

    def finish(self) -> StreamResult:
        self.stop_file.touch()
        sent = int(self.sender.communicate(timeout=30)[0].split()[0])
        received = int(self.receiver.communicate(timeout=30)[0].split()[0])
        return StreamResult(sent, received)


def agent_status(node: ClusterNode) -> dict:
    """The agent's /status document, fetched with `bgpnet status --json` inside the node namespace."""
    out = node.ns.run(str(Path(sys.executable).parent / "bgpnet"), "status", "--json", "--address",
                      "127.0.0.1:9179", check=False).stdout
    return json.loads(out) if out.strip() else {}


def restart_agent(cluster: Cluster, node: ClusterNode) -> float:
    """SIGTERM the agent (as a DaemonSet rollout does), wait for it to exit, start it again; returns the
    seconds the node ran without an agent."""
    assert node.agent is not None
    started = time.monotonic()
    cluster.group.stop_process(node.agent, timeout=20)
    node.agent = None
    gap = time.monotonic() - started
    cluster.start_agent(node)
    return gap
