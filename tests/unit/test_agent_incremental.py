"""The agent's incremental route path (RIB changes → desired routes → RouteTable.apply_changes) against the
real RouteTable over a fake kernel: a burst of UPDATEs reaches the kernel exactly, each round plans only what
changed, and a failed round makes the next one rebuild rather than forget changes."""

from __future__ import annotations

import errno
import threading
from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest
from test_routes_table import FakeRouteNetlink

from bgpnet.agent import Agent
from bgpnet.config import parse_config
from bgpnet.model import LearnedRoute, NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.routes import RouteTable
from bgpnet.routes.resolve import NextHopResolver, RouteAnswer
from bgpnet.speaker.events import PeerUp, RoutesReceived
from tests.unit.test_agent import FakeNodeSource, FakeSpeaker

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

CFG = parse_config({"asn": 64512, "clusterCIDRs": ["10.0.0.0/8"], "routeSyncPeriod": 60, "nodeToNodeMesh": True})
ME = NodeInfo(name="n1", internal_ips=(A("172.31.0.1"),), pod_cidrs=(N("10.244.1.0/24"),))
PEER = NodeInfo(name="n2", internal_ips=(A("172.31.0.2"),), pod_cidrs=(N("10.244.2.0/24"),))
P = A("172.31.0.2")


class Lookup:
    def route_get(self, destination):
        return RouteAnswer(None, A("172.31.0.1"))

    def close(self):
        pass


class Speaker(FakeSpeaker):
    fail_next_set = False

    def __init__(self, *_args):
        pass

    def start(self):
        pass

    def set(self, peers, announcements):
        if Speaker.fail_next_set:
            Speaker.fail_next_set = False
            raise OSError(errno.EPIPE, "speaker gone")

    def stop(self):
        pass


Source = FakeNodeSource


@pytest.fixture
def setup(tmp_path):
    kernel = FakeRouteNetlink()
    sources = []
    agent = Agent(CFG, "n1", cni_conf_dir=tmp_path, make_node_source=lambda cb: sources.append(Source(cb)) or
                  sources[-1], make_speaker=Speaker, route_table=RouteTable(kernel),
                  next_hops=NextHopResolver(Lookup()), clock=lambda: 1000.0)
    sources[0].on_change({"n1": ME, "n2": PEER})
    agent.reconcile()  # first round: a rebuild
    agent._on_speaker_event(PeerUp(P))
    agent.reconcile()  # new next-hop cache generation: another rebuild
    return agent, kernel


def update(announce=(), withdraw=()):
    return RoutesReceived(P, tuple(LearnedRoute(P, R(p), P, (64512 + 1,)) for p in announce),
                          tuple(R(p) for p in withdraw))


def own(kernel):
    return {str(p): [str(g) for g in r.gateways] for p, r in kernel.own().items()}


def test_a_burst_arrives_exactly_and_each_round_sends_only_its_changes(setup):
    agent, kernel = setup
    sent_before = len(kernel.batches)
    for chunk in range(5):
        agent._on_speaker_event(update([f"10.128.{chunk}.{i * 64}/26" for i in range(4)]))
        agent.reconcile()
        assert len(kernel.batches[-1].add) == 4  # this round's UPDATE only, not the table so far
    assert len(kernel.batches) == sent_before + 5
    assert len(own(kernel)) == 20 and set(sum(own(kernel).values(), [])) == {"172.31.0.2"}
    agent._on_speaker_event(update(withdraw=[f"10.128.0.{i * 64}/26" for i in range(4)]))
    agent.reconcile()
    assert len(kernel.batches[-1].delete) == 4 and len(own(kernel)) == 16
    assert agent.snapshot().routes.installed == {"ipv4": 16, "ipv6": 0}


@pytest.mark.parametrize("failing", ["kernel", "speaker"])
def test_a_failed_round_makes_the_next_one_rebuild_instead_of_forgetting(setup, failing):
    agent, kernel = setup
    agent._on_speaker_event(update(["10.128.0.0/26", "10.128.0.64/26"]))
    if failing == "kernel":
        kernel.explode_next_send = True  # answers lost mid-batch
    else:
        Speaker.fail_next_set = True  # the round fails after taking the RIB's changes, before using them
    with pytest.raises(OSError):
        agent.reconcile()
    agent.reconcile()  # nothing new arrived; the failed round's routes must still be installed
    assert set(own(kernel)) == {"10.128.0.0/26", "10.128.0.64/26"}


def test_the_speaker_reader_only_queues_and_never_waits_for_the_agent_lock(setup):
    # A reader that took the lock per event starved the loop during a full-table burst: nothing was installed
    # before the whole table was in.
    agent, kernel = setup
    queued = threading.Event()
    with agent._lock:  # held by the loop or a status request
        reader = threading.Thread(target=lambda: (agent._on_speaker_event(update(["10.128.0.0/26"])), queued.set()))
        reader.start()
        assert queued.wait(5)
        assert "10.128.0.0/26" not in own(kernel)
    reader.join()
    agent.reconcile()
    assert "10.128.0.0/26" in own(kernel)


def test_the_reader_waits_for_the_loop_once_the_queue_is_full(setup, monkeypatch):
    import bgpnet.agent

    agent, kernel = setup
    monkeypatch.setattr(bgpnet.agent, "SPEAKER_QUEUE_LIMIT", 3)
    done = threading.Event()

    def reader():
        for i in range(5):
            agent._on_speaker_event(update([f"10.128.{i}.0/26"]))
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert not done.wait(0.5)  # three queued, nobody draining: the reader is held back
    for _ in range(20):
        agent.reconcile()
        if done.wait(0.2):
            break
    assert done.is_set()
    agent.reconcile()
    assert {f"10.128.{i}.0/26" for i in range(5)} <= set(own(kernel))
