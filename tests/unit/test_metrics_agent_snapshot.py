"""Agent.snapshot(): what the agent reports follows its events, with fakes at its seams (the real adapters'
reports are exercised in tests/privileged/test_observability_cluster.py)."""

import dataclasses
import errno
import threading
from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest

from bgpnet import health
from bgpnet.agent import Agent
from bgpnet.config import CniSettings, parse_config
from bgpnet.model import LearnedRoute, NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.routes.table import ApplyResult, RouteError
from bgpnet.speaker.events import PeerDown, PeerUp, RoutesReceived, SpeakerRestarted
from bgpnet.speaker.sessions import SessionState
from tests.unit.test_agent import FakeRouteTable, deliver_at_once

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

N1 = NodeInfo(name="n1", internal_ips=(A("172.31.0.1"),), pod_cidrs=(N("10.244.1.0/24"),))
N2 = NodeInfo(name="n2", internal_ips=(A("172.31.0.2"),), pod_cidrs=(N("10.244.2.0/24"),))
N3 = NodeInfo(name="n3", internal_ips=(A("172.31.0.3"),), pod_cidrs=(N("10.244.3.0/24"),))
P2, P3 = A("172.31.0.2"), A("172.31.0.3")


class NodeSource:
    def __init__(self, on_change):
        self.on_change = on_change
        self.stats = dataclasses.make_dataclass("Stats", [])()
        self.stats.__dict__.update(events={"ADDED": 3}, relists=1, watches=2, api_errors=0, bad_nodes={},
                                   api_reachable=True, last_sync_time=123.0, nodes=3)

    def run(self, stop: threading.Event) -> None:
        stop.wait()


class Speaker:
    """Reports sessions like the real speaker (every part of SpeakerPort)."""

    def __init__(self, router_id, on_event):
        self.on_event = on_event
        self.restarts, self.bad_messages, self.command_errors, self.channel_restarts = 0, 0, 0, 0
        self.pid = 999
        self.states: dict = {}
        self.loop_status: tuple = ()

    def loops(self):
        return self.loop_status

    def start(self):
        pass

    def set(self, peers, announcements):
        pass

    def stop(self):
        pass

    def sessions(self):
        return dict(self.states)


class Table(FakeRouteTable):
    """test_agent's fake kernel table, whose results can be forced (`result`), e.g. to report route errors;
    every apply is a full one, so a forced result is what the agent sees whatever path it takes."""

    def __init__(self):
        super().__init__()
        self.result = None  # None: report what apply() really changed

    def apply(self, desired):
        applied = super().apply(desired)
        return self.result if self.result is not None else applied

    def apply_changes(self, desired, prefixes):
        return self.apply(desired.values())


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def make(tmp_path, config=None):
    made = {}
    clock, table = Clock(), Table()
    config = config or parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "routeSyncPeriod": 30})
    agent = Agent(config, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: made.setdefault("source", NodeSource(cb)),
                  make_speaker=lambda rid, cb: made.setdefault("speaker", deliver_at_once(agent, Speaker(rid, cb))),
                  route_table=table, clock=clock)
    agent.start()
    return agent, made, table, clock


def learned(peer, prefix):
    return LearnedRoute(peer=A(peer), prefix=R(prefix), next_hop=A(peer))


def test_before_its_own_node_is_listed_the_agent_is_alive_but_not_ready(tmp_path):
    agent, _, _, _ = make(tmp_path)
    agent.reconcile()
    snap = agent.snapshot()
    assert not snap.own_node_known and snap.peers == ()
    assert health.liveness(snap).ok
    assert health.readiness(snap).problems == ("own Node n1 not listed yet",)
    assert snap.kube.nodes == 3 and snap.kube.events == {"ADDED": 3} and snap.kube.reachable


def test_sessions_prefixes_and_rejections_follow_speaker_events(tmp_path):
    agent, made, table, _ = make(tmp_path)
    made["source"].on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speaker = made["speaker"]
    speaker.states = {P2: SessionState(state="established", since=50.0, prefixes_received=2),
                      P3: SessionState(state="down", since=60.0, last_down_reason="hold timer expired")}
    speaker.on_event(PeerUp(P2))
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.2.0/24"),
                                         learned("172.31.0.2", "10.99.0.0/24")), ()))
    agent.reconcile()
    snap = agent.snapshot()
    p2, p3 = snap.peers
    assert (p2.address, p2.asn, p2.description, p2.state, p2.since) == ("172.31.0.2", 64512, "n2", "established", 50.0)
    assert (p2.prefixes_accepted, p2.prefixes_advertised, p2.prefixes_received) == (1, 1, 2)
    assert p2.rejected == {"outside-cluster-cidrs": 1} and p2.state_changes == {"established": 1, "down": 0}
    assert (p3.state, p3.last_down_reason, p3.prefixes_advertised) == ("down", "hold timer expired", 0)
    assert snap.announced == ("10.244.1.0/24",)
    assert snap.routes.installed == {"ipv4": 1, "ipv6": 0}
    assert snap.speaker.running and snap.speaker.pid == 999
    assert health.readiness(snap).ok

    speaker.states[P2] = SessionState(state="down", since=70.0, last_down_reason="connection closed")
    speaker.on_event(PeerDown(P2, "connection closed"))
    agent.reconcile()
    snap = agent.snapshot()
    assert snap.peers[0].prefixes_accepted == 0 and snap.peers[0].state_changes["down"] == 1
    assert snap.routes.installed == {"ipv4": 0, "ipv6": 0}
    assert health.readiness(snap).problems == ("no BGP session established (0 of 2)",)


def test_rejection_totals_survive_a_speaker_restart(tmp_path):
    agent, made, _, _ = make(tmp_path)
    made["source"].on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    speaker = made["speaker"]
    speaker.on_event(SpeakerRestarted())
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.1.0/24"),), ()))
    speaker.on_event(SpeakerRestarted())  # a fresh RIB: its own counter starts again
    speaker.on_event(RoutesReceived(P2, (learned("172.31.0.2", "10.244.1.0/24"),), ()))
    snap = agent.snapshot()
    assert snap.peers[0].rejected == {"own-pod-cidr": 2}
    assert snap.speaker.restarts == 1


def test_route_errors_make_the_node_unready_until_an_apply_succeeds(tmp_path):
    agent, made, table, _ = make(tmp_path)
    made["source"].on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    made["speaker"].on_event(PeerUp(P2))
    made["speaker"].states = {P2: SessionState(state="established")}
    table.result = ApplyResult(0, 0, 0, (RouteError(R("10.244.2.0/24"), "add", errno.EEXIST, "conflict"),), 0.002)
    agent.reconcile()
    snap = agent.snapshot()
    assert not snap.routes_programmed and snap.routes.errors == {"conflict": 1}
    assert health.readiness(snap).problems == ("routes not programmed: last sync had 1 errors",)
    table.result = None
    agent.reconcile()
    snap = agent.snapshot()
    assert snap.routes_programmed and health.readiness(snap).ok
    assert snap.routes.durations["resync"].count + snap.routes.durations["apply"].count == 3


def test_a_loop_without_progress_fails_liveness(tmp_path):
    agent, made, _, clock = make(tmp_path)
    assert agent.stall_after() == 90
    snap = agent.snapshot()
    assert health.liveness(snap).ok
    clock.now += 91  # the reconcile loop never came round again
    verdict = health.liveness(agent.snapshot())
    assert not verdict.ok and verdict.problems == ("loop reconcile made no progress for 91s (limit 90s)",)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_node_source_thread_fails_liveness(tmp_path):
    made = {}

    class Crashing(NodeSource):
        def run(self, stop):
            raise RuntimeError("bug")

    agent = Agent(parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]}), "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: made.setdefault("source", Crashing(cb)),
                  make_speaker=lambda rid, cb: Speaker(rid, cb), route_table=Table())
    agent.start()
    agent._node_thread.join(timeout=5)
    assert health.liveness(agent.snapshot()).problems == ("loop node-source is not running",)


def test_ipam_usage_is_read_from_the_plugins_store(tmp_path):
    data_dir = tmp_path / "cni-data"
    store = data_dir / "bgpnet"
    store.mkdir(parents=True)
    for name in ("10.244.1.2", "10.244.1.3", "lock", "last_reserved_ip.0"):
        (store / name).write_text("id\neth0\n")
    config = dataclasses.replace(parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]}),
                                 cni=CniSettings(data_dir=str(data_dir)))
    agent, made, _, _ = make(tmp_path / "net.d", config)
    made["source"].on_change({"n1": N1})
    agent.reconcile()
    (pool,) = agent.snapshot().ipam
    assert (pool.pod_cidr, pool.in_use, pool.capacity) == ("10.244.1.0/24", 2, 254)
