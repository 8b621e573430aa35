"""The BFD process (`python -m bgpnet.bfd`) against BIRD2's `protocol bfd`, across a veth pair in fresh network
namespaces: the session comes Up on both sides, the intervals are negotiated, a black-holed link (an nftables
drop in the router's namespace, not a link down) is declared down by detection time, and the session comes
back when the link does."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

import pytest

NODE, TOR = "10.99.0.1", "10.99.0.2"
NODE6, TOR6 = "fd00:99::1", "fd00:99::2"

BIRD_CONF = """router id {tor};
protocol device {{ }}
protocol bfd {{
  interface "eth0" {{ min rx interval {rx} ms; min tx interval {tx} ms; multiplier {mult}; }};
  neighbor {node} local {tor};
  neighbor {node6} local {tor6};
}}
"""

BLACKHOLE = """table inet bfd_blackhole {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
}
"""


class BfdProcess:
    """bgpnet's BFD process in a namespace, its JSON lines collected by a thread."""

    def __init__(self, ns, peers: list[dict]) -> None:
        self.proc = ns.spawn([sys.executable, "-m", "bgpnet.bfd"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda m: m.get("ready"), "ready")
        self.configure(peers)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def configure(self, peers: list[dict]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"peers": peers}) + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(self, match, what: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(message)
            if match(message):
                return message
        raise AssertionError(f"BFD process: no {what} within {timeout} s; saw {self.seen}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def link(netns_group, tmp_path):
    tor, node = netns_group.add("tor"), netns_group.add("node")
    netns_group.veth(tor, "eth0", node, "eth0")
    tor.run("ip", "addr", "add", f"{TOR}/24", "dev", "eth0")
    node.run("ip", "addr", "add", f"{NODE}/24", "dev", "eth0")
    tor.run("ip", "-6", "addr", "add", f"{TOR6}/64", "dev", "eth0", "nodad")
    node.run("ip", "-6", "addr", "add", f"{NODE6}/64", "dev", "eth0", "nodad")

    def start_bird(rx: int, tx: int, mult: int = 3) -> str:
        (tmp_path / "bird.conf").write_text(BIRD_CONF.format(tor=TOR, node=NODE, tor6=TOR6, node6=NODE6, rx=rx, tx=tx,
                                                                 mult=mult))
        sock = tmp_path / "bird.sock"
        netns_group.track(tor.spawn(["bird", "-f", "-c", str(tmp_path / "bird.conf"), "-s", str(sock),
                                     "-P", str(tmp_path / "bird.pid")]))
        return str(sock)

    return tor, node, start_bird


def bird_session(sock: str, node: str = NODE) -> str:
    """BIRD's line for our node in `show bfd sessions` ('' when it has none)."""
    out = subprocess.run(["birdc", "-s", sock, "show", "bfd", "sessions"], capture_output=True, text=True,
                         timeout=10).stdout
    return next((line for line in out.splitlines() if line.split()[:1] == [node]), "")


def wait_bird(sock: str, state: str, timeout: float = 15.0, node: str = NODE) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = bird_session(sock, node)
        if state in line.split():
            return line
        time.sleep(0.05)
    raise AssertionError(f"BIRD's session to {node} not {state} within {timeout} s: {bird_session(sock, node)!r}")


def peer(rx: int = 300, tx: int = 300, mult: int = 3) -> dict:
    return {"peer": TOR, "local": NODE, "min_rx_ms": rx, "min_tx_ms": tx, "multiplier": mult}


def test_session_up_with_bird_then_a_black_holed_link_is_detected_by_both_and_recovers(link):
    tor, node, start_bird = link
    sock = start_bird(rx=300, tx=300)
    bfd = BfdProcess(node, [peer()])
    try:
        bfd.wait_for(lambda m: m.get("state") == "Up", "session Up")
        # Up at the slow rate (1 s while not Up, RFC 5880 §6.8.3), then the Poll sequences: BIRD's multiplier
        # 3 x max(our 300 ms RequiredMinRx, its 300 ms TX).
        bfd.wait_for(lambda m: m.get("detect_ms") == 900.0 and m.get("tx_ms") == 300.0, "the negotiated timers")
        wait_bird(sock, "Up")
        tor.run("nft", "-f", "-", input=BLACKHOLE)  # the link still up, every packet of the router dropped
        started = time.monotonic()
        down = bfd.wait_for(lambda m: m.get("state") == "Down", "session Down")
        detected = time.monotonic() - started
        assert down["diag"] == 1  # Control Detection Time Expired: silence, not a message from BIRD
        wait_bird(sock, "Down")  # BIRD hears nothing from us either
        print(f"\nblack-holed link detected after {detected * 1000:.0f} ms (detection time 900 ms)")
        tor.run("nft", "delete", "table", "inet", "bfd_blackhole")
        bfd.wait_for(lambda m: m.get("state") == "Up", "session Up again")
        wait_bird(sock, "Up")
    finally:
        bfd.stop()


def test_an_ipv6_session_comes_up_beside_the_ipv4_one_and_detects_a_black_hole(link):
    # RFC 5881 over IPv6: hop limit 255 out and required in (IPV6_RECVHOPLIMIT), the same port and rules.
    tor, node, start_bird = link
    sock = start_bird(rx=300, tx=300)
    v6 = {"peer": TOR6, "local": NODE6, "min_rx_ms": 300, "min_tx_ms": 300, "multiplier": 3}
    bfd = BfdProcess(node, [peer(), v6])
    try:
        for address in (TOR, TOR6):
            bfd.wait_for(lambda m, a=address: m.get("peer") == a and m.get("state") == "Up", f"{address} Up")
        wait_bird(sock, "Up", node=NODE6)
        tor.run("nft", "-f", "-", input=BLACKHOLE)
        down = bfd.wait_for(lambda m: m.get("peer") == TOR6 and m.get("state") == "Down", "IPv6 session Down")
        assert down["diag"] == 1
        wait_bird(sock, "Down", node=NODE6)
    finally:
        bfd.stop()


def test_intervals_are_negotiated_with_a_slower_bird(link):
    _, node, start_bird = link
    sock = start_bird(rx=500, tx=500, mult=4)
    bfd = BfdProcess(node, [peer(rx=100, tx=100, mult=3)])
    try:
        bfd.wait_for(lambda m: m.get("state") == "Up", "session Up")
        # We detect after BIRD's multiplier 4 x max(our 100 ms RequiredMinRx, its 500 ms TX) and send every
        # max(our 100 ms TX, its 500 ms RequiredMinRx).
        bfd.wait_for(lambda m: m.get("detect_ms") == 2000.0 and m.get("tx_ms") == 500.0, "the negotiated timers")
        line = wait_bird(sock, "Up")
        # Once Up, both sides announce their fast rates with a Poll (RFC 5880 §6.8.3). BIRD then sends every
        # max(its 500 ms TX, our 100 ms RequiredMinRx) = 0.5 s and times us out after our multiplier 3 x
        # max(its 500 ms RequiredMinRx, our 100 ms TX) = 1.5 s: its Interval and Timeout columns.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and line.split()[-2:] != ["0.500", "1.500"]:
            time.sleep(0.1)
            line = bird_session(sock)
        assert line.split()[-2:] == ["0.500", "1.500"], line
    finally:
        bfd.stop()


SEND = """import socket, sys
from bgpnet.bfd.packet import DOWN, ControlPacket
required_min_rx_us = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
packet = ControlPacket(state=DOWN, my_discriminator=7, your_discriminator=0, desired_min_tx_us=1_000_000,
                       required_min_rx_us=required_min_rx_us, detect_mult=3, diag=0, poll=False, final=False)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(sys.argv[1]))
sock.bind((sys.argv[2], 49200))
sock.sendto(packet.encode(), (sys.argv[3], 3784))
"""


def test_a_packet_that_is_not_from_a_direct_neighbour_is_ignored(link):
    # RFC 5881 §5 (GTSM): a Control packet must arrive with TTL 255; one sent with 64 may come from anywhere.
    tor, node, _ = link
    bfd = BfdProcess(node, [peer()])
    try:
        tor.run(sys.executable, "-c", SEND, "64", TOR, NODE)
        with pytest.raises(AssertionError):
            bfd.wait_for(lambda m: "state" in m, "no state change", timeout=1.5)
        tor.run(sys.executable, "-c", SEND, "255", TOR, NODE)
        moved = bfd.wait_for(lambda m: "state" in m, "Init")  # the same packet with TTL 255 is believed
        assert (moved["old"], moved["state"]) == ("Down", "Init")
    finally:
        bfd.stop()


COUNT = """import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 3784))
sock.settimeout(0.1)
count, end = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        sock.recv(128)
        count += 1
    except socket.timeout:
        pass
print(count)
"""


def test_a_peer_asking_for_no_packets_gets_none(link):
    # RFC 5880 §6.8.7: with the peer's RequiredMinRx at 0 the system must not transmit periodically.
    tor, node, _ = link
    bfd = BfdProcess(node, [peer()])
    try:
        assert int(tor.run(sys.executable, "-c", COUNT, TOR, "2.5").stdout) >= 1  # Down: one per second
        tor.run(sys.executable, "-c", SEND, "255", TOR, NODE, "0")
        bfd.wait_for(lambda m: m.get("state") == "Init", "Init")
        assert int(tor.run(sys.executable, "-c", COUNT, TOR, "2.5").stdout) == 0
    finally:
        bfd.stop()


HOLD_PORT = """import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 3784))
print("bound", flush=True)
time.sleep(60)
"""


def test_a_port_held_by_another_bfd_daemon_is_reported_not_a_traceback(netns_group):
    # FRR's bfdd on the same host holds UDP 3784: the process says so in one line and exits; the agent restarts
    # it with a growing delay (bgpnet.bfd.process.restart_delay) and shows it as not running.
    ns = netns_group.add("held")
    holder = netns_group.track(ns.spawn([sys.executable, "-c", HOLD_PORT], stdout=subprocess.PIPE, text=True))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "bound"
    proc = subprocess.run(ns.argv([sys.executable, "-m", "bgpnet.bfd"]), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"error": "cannot listen on UDP port 3784: [Errno 98] Address already in use"}
    assert "Traceback" not in proc.stderr
