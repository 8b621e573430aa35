"""Real ExaBGP speakers in network namespaces: an iBGP full mesh of nodes on one L2 segment (one ASN), and
one node against a real BIRD2 ToR (eBGP)."""

from __future__ import annotations

import ipaddress
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bgpnet.lab.cluster import wait_for
from bgpnet.model import BgpPeer
from bgpnet.prefix import Prefix
from bgpnet.speaker import exabgp_process
from bgpnet.speaker.events import EndOfRib, PeerDown, PeerUp, RoutesReceived, SpeakerRestarted
from bgpnet.speaker.speaker import Speaker

pytestmark = pytest.mark.privileged

ASN = 64512
ip, net = ipaddress.ip_address, ipaddress.ip_network
route_prefix = Prefix.parse  # what the speaker reports; announcements stay ipaddress networks


class Events:
    """Everything one speaker reported, with a poll-until helper (generous deadlines, no timing asserts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[float, object]] = []

    def __call__(self, event: object) -> None:
        with self._lock:
            self.items.append((time.monotonic(), event))

    def list(self) -> list[object]:
        with self._lock:
            return [e for _, e in self.items]

    def wait_for(self, predicate, timeout: float = 30, what: str = "event") -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.list():
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s; got {self.list()}")

    def received(self, prefix: str, next_hop: str | None = None) -> bool:
        for event in self.list():
            if isinstance(event, RoutesReceived):
                for route in event.announced:
                    if route.prefix == route_prefix(prefix) and (next_hop is None or route.next_hop == ip(next_hop)):
                        return True
        return False

    def withdrawn(self, prefix: str) -> bool:
        return any(isinstance(e, RoutesReceived) and route_prefix(prefix) in e.withdrawn for e in self.list())

    def downs(self) -> list[PeerDown]:
        return [e for e in self.list() if isinstance(e, PeerDown)]

    def ups(self) -> list[PeerUp]:
        return [e for e in self.list() if isinstance(e, PeerUp)]

    def restarts(self) -> int:
        return sum(isinstance(e, SpeakerRestarted) for e in self.list())


def segment(group, count: int):
    """`count` node namespaces on one bridge (in a "lan" namespace), node i has 172.30.0.i/24."""
    lan = group.add("lan")
    lan.run("ip", "link", "add", "br0", "type", "bridge")
    lan.run("ip", "link", "set", "br0", "up")
    nodes = []
    for i in range(1, count + 1):
        node = group.add(f"n{i}")
        group.veth(node, "eth0", lan, f"p{i}")
        lan.run("ip", "link", "set", f"p{i}", "master", "br0")
        node.run("ip", "addr", "add", f"172.30.0.{i}/24", "dev", "eth0")
        nodes.append(node)
    return nodes


def node_ip(i: int) -> ipaddress.IPv4Address:
    return ip(f"172.30.0.{i}")


def mesh_peer(me: int, other: int) -> BgpPeer:
    # As bgpnet.state.mesh_peers does: only the lower address connects, so two ExaBGPs never collide.
    return BgpPeer(node_ip(other), ASN, node_ip(me), ASN, hold_time=9,
                   passive=node_ip(me).packed > node_ip(other).packed)


def start_speaker(ns, run_dir: Path, me: int, peers: list[BgpPeer], announcements: list[str]
                  ) -> tuple[Speaker, Events]:
    events = Events()
    speaker = Speaker(run_dir, node_ip(me), events,
                      exabgp_argv=ns.argv(exabgp_process.default_exabgp_argv()))
    speaker.set(peers, [net(p) for p in announcements])
    speaker.start()
    return speaker, events


def established_179_connections(ns) -> set[str]:
    """The TCP connections of BGP sessions in a namespace (local and remote address:port)."""
    out = ns.run("ss", "-tnH", "state", "established", "( sport = :179 or dport = :179 )").stdout
    return {" ".join(line.split()[-2:]) for line in out.splitlines() if line.strip()}

# ---------------------------------------------------------------- iBGP mesh on one segment



@pytest.fixture
def two_nodes(netns_group, tmp_path):
    n1, n2, n3 = segment(netns_group, 3)
    started = time.monotonic()
    s1, e1 = start_speaker(n1, tmp_path / "n1", 1, [mesh_peer(1, 2)], ["10.244.1.0/24"])
    s2, e2 = start_speaker(n2, tmp_path / "n2", 2, [mesh_peer(2, 1)], ["10.244.2.0/24"])
    try:
        e1.wait_for(lambda e: isinstance(e, PeerUp), what="PeerUp on node 1")
        print(f"\nsession up {time.monotonic() - started:.3f} s after start of both speakers")
        yield (n1, s1, e1), (n2, s2, e2), n3
    finally:
        s1.stop()
        s2.stop()


def test_each_node_receives_the_others_prefix_with_the_node_as_next_hop(two_nodes):
    (_, _, e1), (_, _, e2), _ = two_nodes
    wait_for(lambda: e1.received("10.244.2.0/24", "172.30.0.2"), what="node 1 learning node 2's prefix")
    wait_for(lambda: e2.received("10.244.1.0/24", "172.30.0.1"), what="node 2 learning node 1's prefix")
    assert e1.list()[0] == SpeakerRestarted()


def test_announcement_changes_go_out_without_resetting_the_session(two_nodes):
    (n1, s1, e1), (_, s2, e2), _ = two_nodes
    wait_for(lambda: e2.received("10.244.1.0/24"), what="initial route")
    connections = established_179_connections(n1)
    since = s1.sessions()[node_ip(2)].since
    assert len(connections) == 1

    s1.set([mesh_peer(1, 2)], [net("10.244.1.0/24"), net("10.244.11.0/24")])
    wait_for(lambda: e2.received("10.244.11.0/24", "172.30.0.1"), what="added prefix at node 2")
    s1.set([mesh_peer(1, 2)], [net("10.244.11.0/24")])
    wait_for(lambda: e2.withdrawn("10.244.1.0/24"), what="withdrawal at node 2")
    s1.set([mesh_peer(1, 2)], [net("10.244.11.0/24")])  # unchanged: nothing to send

    assert e1.downs() == [] and e2.downs() == []
    assert established_179_connections(n1) == connections
    state = s1.sessions()[node_ip(2)]
    assert (state.state, state.since, state.established_count) == ("established", since, 1)


def test_adding_a_third_peer_does_not_bounce_the_existing_session(two_nodes, tmp_path):
    (n1, s1, e1), (_, _, e2), n3 = two_nodes
    wait_for(lambda: e2.received("10.244.1.0/24"), what="initial route")
    connections = established_179_connections(n1)
    since = s1.sessions()[node_ip(2)].since

    s3, e3 = start_speaker(n3, tmp_path / "n3", 3, [mesh_peer(3, 1)], ["10.244.3.0/24"])
    try:
        s1.set([mesh_peer(1, 2), mesh_peer(1, 3)], [net("10.244.1.0/24")])
        e1.wait_for(lambda e: e == PeerUp(node_ip(3)), what="PeerUp for the new peer")
        # The newly added neighbor gets the current announcements, and node 1 learns the new node's prefix.
        wait_for(lambda: e3.received("10.244.1.0/24", "172.30.0.1"), what="node 3 learning node 1's prefix")
        wait_for(lambda: e1.received("10.244.3.0/24", "172.30.0.3"), what="node 1 learning node 3's prefix")
        assert e1.downs() == [] and e2.downs() == []
        assert connections < established_179_connections(n1)
        state = s1.sessions()[node_ip(2)]
        assert (state.state, state.since, state.established_count) == ("established", since, 1)
        assert set(s1.sessions()) == {node_ip(2), node_ip(3)}
    finally:
        s3.stop()


def test_killed_exabgp_is_restarted_and_routes_are_relearned(two_nodes):
    (_, s1, e1), (_, s2, e2), _ = two_nodes
    wait_for(lambda: e2.received("10.244.1.0/24") and e1.received("10.244.2.0/24"), what="initial routes")
    old_pid = s2.pid
    before = len(e2.list())

    os.kill(old_pid, signal.SIGKILL)

    e1.wait_for(lambda e: isinstance(e, PeerDown) and e.peer == node_ip(2), what="PeerDown at node 1")
    wait_for(lambda: s2.pid not in (None, old_pid), what="a new ExaBGP at node 2")
    after = lambda: e2.list()[before:]  # noqa: E731
    wait_for(lambda: any(isinstance(e, RoutesReceived) and any(r.prefix == route_prefix("10.244.1.0/24")
                                                                 for r in e.announced) for e in after()),
               what="node 2 relearning node 1's prefix")
    kinds = [type(e) for e in after()]
    assert kinds.index(PeerDown) < kinds.index(SpeakerRestarted) < kinds.index(PeerUp) < kinds.index(
        RoutesReceived)
    # Node 1's ExaBGP re-sent its routes on the new session, and node 2's re-announced its own.
    wait_for(lambda: len([e for e in e1.list() if isinstance(e, RoutesReceived)
                            and any(r.prefix == route_prefix("10.244.2.0/24") for r in e.announced)]) >= 2,
               what="node 1 relearning node 2's prefix")
    assert s1.sessions()[node_ip(2)].established_count == 2

def helper_of(exabgp_pid: int) -> int:
    """The API helper ExaBGP spawned, once it handed its pipes over and became the `cat` waiter."""
    def waiter() -> int | None:
        try:
            children = Path(f"/proc/{exabgp_pid}/task/{exabgp_pid}/children").read_text().split()
            return next((int(c) for c in children if os.readlink(f"/proc/{c}/exe").endswith("/cat")), None)
        except (FileNotFoundError, ProcessLookupError):
            return None
    found: list[int] = []
    wait_for(lambda: found.append(waiter()) or found[-1], what=f"the API helper of ExaBGP {exabgp_pid}")
    return found[-1]


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # exited; only its reaping (by init) is left


def test_dead_api_helper_restarts_exabgp_and_no_descriptor_leaks(two_nodes):
    (_, s1, e1), (_, s2, e2), _ = two_nodes
    wait_for(lambda: e2.received("10.244.1.0/24") and e1.received("10.244.2.0/24"), what="initial routes")
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731 (this process is both speakers' agent)
    baseline = fds()

    # The helper dies while ExaBGP lives: the speaker sees EOF on the helper's socket and restarts ExaBGP.
    old_pid = s2.pid
    os.kill(helper_of(old_pid), signal.SIGKILL)
    wait_for(lambda: s2.pid not in (None, old_pid), what="a new ExaBGP after its helper died")
    wait_for(lambda: s2.sessions()[node_ip(1)].established_count == 2, what="the session back up")
    # ExaBGP dies: its waiting helper goes with it.
    old_pid = s2.pid
    helper = helper_of(old_pid)
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: gone(helper), what="the helper to die with its ExaBGP")
    wait_for(lambda: s2.pid not in (None, old_pid), what="a new ExaBGP after the old one died")
    wait_for(lambda: s2.sessions()[node_ip(1)].established_count == 3, what="the session back up")
    wait_for(lambda: fds() == baseline, what=f"{baseline} descriptors in the agent (has {fds()})")
    # Stopping the speaker kills ExaBGP and leaves no helper behind.
    helper = helper_of(s2.pid)
    s2.stop()
    wait_for(lambda: gone(helper), what="the helper to end with the speaker")

# ---------------------------------------------------------------- BIRD2 as ToR


TOR, NODE = "172.31.0.254", "172.31.0.1"

BIRD_CONF = f"""
router id {TOR};
protocol device {{}}
protocol static feed {{
  ipv4;
  route 10.200.1.0/24 blackhole;
  route 10.200.2.0/24 blackhole;
  route 10.200.3.0/25 blackhole;
}}
protocol bgp node1 {{
  local {TOR} as 65000;
  neighbor {NODE} as 64512;
  hold time 9; keepalive time 3; connect retry time 2; error wait time 1, 10;
  ipv4 {{
    import all;
    export filter {{ bgp_community.add((65000, 100)); accept; }};
  }};
}}
"""


def test_session_with_bird_exchanges_routes_both_ways(netns_group, tmp_path):
    tor, node = netns_group.add("tor"), netns_group.add("node")
    netns_group.veth(tor, "eth0", node, "eth0")
    tor.run("ip", "addr", "add", f"{TOR}/24", "dev", "eth0")
    node.run("ip", "addr", "add", f"{NODE}/24", "dev", "eth0")
    (tmp_path / "bird.conf").write_text(BIRD_CONF)
    sock = tmp_path / "bird.sock"
    tor.spawn(["bird", "-f", "-c", str(tmp_path / "bird.conf"), "-s", str(sock), "-P", str(tmp_path / "bird.pid")])

    events = Events()
    speaker = Speaker(tmp_path / "speaker", ip(NODE), events,
                      exabgp_argv=node.argv(exabgp_process.default_exabgp_argv()))
    speaker.set([BgpPeer(ip(TOR), 65000, ip(NODE), 64512)], [net("10.244.1.0/24")])
    started = time.monotonic()
    speaker.start()
    try:
        events.wait_for(lambda e: e == PeerUp(ip(TOR)), what="PeerUp from BIRD")
        print(f"\nsession with BIRD up {time.monotonic() - started:.3f} s after Speaker.start()")
        events.wait_for(lambda e: e == EndOfRib(ip(TOR), "ipv4 unicast"), what="End-of-RIB from BIRD")
        routes = {r.prefix: r for e in events.list() if isinstance(e, RoutesReceived) for r in e.announced}
        assert set(routes) == set(map(route_prefix, ("10.200.1.0/24", "10.200.2.0/24", "10.200.3.0/25")))
        route = routes[route_prefix("10.200.3.0/25")]
        assert (route.peer, route.next_hop, route.as_path, route.communities) == (
            ip(TOR), ip(TOR), (65000,), ("65000:100",))

        def bird_route() -> str:
            return tor.run("birdc", "-s", str(sock), "show", "route", "for", "10.244.1.0/24", "all").stdout
        wait_for(lambda: f"via {NODE}" in bird_route(), what="BIRD learning the node's prefix")
        assert "BGP.as_path: 64512" in bird_route()
        assert speaker.sessions()[ip(TOR)].prefixes_received == 3
    finally:
        speaker.stop()
