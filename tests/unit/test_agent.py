"""The agent's reconcile loop against fakes at its three seams (node source, speaker, route table)."""

import threading
from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.agent import Agent
from bgpnet.config import parse_config
from bgpnet.kube.node_source import NodeSourceStats
from bgpnet.model import KernelRoute, LearnedRoute, NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.routes.table import ApplyResult
from bgpnet.speaker.events import BadMessage, EndOfRib, PeerDown, PeerUp, RoutesReceived, SpeakerRestarted

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

CFG = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "startupGracePeriod": 10,
                    "routeSyncPeriod": 60})


def node(name, ip, cidr):
    return NodeInfo(name=name, internal_ips=(A(ip),), pod_cidrs=(N(cidr),))


N1, N2, N3 = node("n1", "172.31.0.1", "10.244.1.0/24"), node("n2", "172.31.0.2", "10.244.2.0/24"), \
    node("n3", "172.31.0.3", "10.244.3.0/24")


class FakeNodeSource:
    """The whole NodeSourcePort: Nodes are handed in by the test (`on_change`); nothing is watched."""

    stats = NodeSourceStats()

    def __init__(self, on_change):
        self.on_change = on_change

    def run(self, stop: threading.Event) -> None:
        stop.wait()


class FakeSpeaker:
    """The whole SpeakerPort: it records what it is told; events come from the test (`on_event`). It reports no
    sessions of its own, so status shows what the agent saw."""

    restarts = bad_messages = command_errors = channel_restarts = 0
    pid = None

    def __init__(self, router_id, on_event):
        self.router_id, self.on_event = router_id, on_event
        self.peers, self.announcements, self.started, self.stopped = None, None, False, False

    def sessions(self):
        return {}

    def loops(self):
        return ()

    def start(self):
        self.started = True

    def set(self, peers, announcements):
        self.peers, self.announcements = frozenset(peers), frozenset(announcements)

    def stop(self):
        self.stopped = True


def deliver_at_once(agent, speaker):
    """The real loop applies queued speaker events within milliseconds of their arrival; with a fake speaker they
    are applied as they are sent, so a test's clock moves between events as time would."""
    queue = speaker.on_event

    def on_event(event):
        queue(event)
        agent.apply_speaker_events()

    speaker.on_event = on_event
    return speaker


class FakeRouteTable:
    """The whole RouteTablePort, over a dict: what it is given is what the kernel holds."""

    def __init__(self, leftovers=()):
        self.kernel = {r.prefix: r for r in leftovers}
        self.resyncs = 0

    def apply(self, desired):
        new = {r.prefix: r for r in desired}
        added, removed = len(new.keys() - self.kernel.keys()), len(self.kernel.keys() - new.keys())
        self.kernel = new
        return ApplyResult(added, 0, removed, (), 0.0)

    def apply_changes(self, desired, prefixes):
        added = removed = 0
        for prefix in prefixes:
            if prefix in desired:
                added += prefix not in self.kernel
                self.kernel[prefix] = desired[prefix]
            elif self.kernel.pop(prefix, None) is not None:
                removed += 1
        return ApplyResult(added, 0, removed, (), 0.0)

    def resync(self, desired):
        self.resyncs += 1
        return self.apply(desired)

    # The background resync of the real table, done at once: the dump is "in" as soon as it is asked for.
    resync_pending = False

    def start_resync(self, on_done):
        self.resync_pending = True
        on_done()

    def finish_resync(self, desired):
        if not self.resync_pending:
            return None
        self.resync_pending = False
        return self.resync(desired)

    def resync_running(self):
        return self.resync_pending

    def dump(self):
        return dict(self.kernel)

    def installed(self):
        return self.kernel

    def installed_by_family(self):
        v6 = sum(p.version == 6 for p in self.kernel)
        return {"ipv4": len(self.kernel) - v6, "ipv6": v6}

    def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_agent(tmp_path, leftovers=()):
    sources, speakers = [], []
    table, clock = FakeRouteTable(leftovers), Clock()
    agent = Agent(CFG, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=table, clock=clock)
    agent.start()
    return agent, sources[0], speakers, table, clock


def learned(peer, prefix):
    return LearnedRoute(peer=A(peer), prefix=R(prefix), next_hop=A(peer))


def test_mesh_announce_learn_install_and_peer_down(tmp_path):
    agent, source, speakers, table, _ = make_agent(tmp_path)
    source.on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speaker = speakers[0]
    assert speaker.started and speaker.router_id == A("172.31.0.1")
    assert {p.address for p in speaker.peers} == {A("172.31.0.2"), A("172.31.0.3")}
    assert {a.prefix for a in speaker.announcements} == {N("10.244.1.0/24")}
    assert (tmp_path / "10-bgpnet.conflist").exists()

    speaker.on_event(PeerUp(A("172.31.0.2")))
    speaker.on_event(RoutesReceived(A("172.31.0.2"), (learned("172.31.0.2", "10.244.2.0/24"),
                                                      learned("172.31.0.2", "10.244.1.0/24")), ()))
    speaker.on_event(RoutesReceived(A("172.31.0.3"), (learned("172.31.0.3", "10.244.3.0/24"),), ()))
    agent.reconcile()
    assert table.kernel == {R("10.244.2.0/24"): KernelRoute(R("10.244.2.0/24"), (A("172.31.0.2"),)),
                            R("10.244.3.0/24"): KernelRoute(R("10.244.3.0/24"), (A("172.31.0.3"),))}
    assert agent.rib.rejected[(A("172.31.0.2"), "own-pod-cidr")] == 1

    speaker.on_event(PeerDown(A("172.31.0.3"), "connection closed"))
    agent.reconcile()
    assert list(table.kernel) == [R("10.244.2.0/24")]


def test_deleted_node_loses_its_routes_at_once(tmp_path):
    agent, source, speakers, table, _ = make_agent(tmp_path)
    source.on_change({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    speakers[0].on_event(RoutesReceived(A("172.31.0.3"), (learned("172.31.0.3", "10.244.3.0/24"),), ()))
    agent.reconcile()
    assert R("10.244.3.0/24") in table.kernel
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    assert R("10.244.3.0/24") not in table.kernel
    assert {p.address for p in speakers[0].peers} == {A("172.31.0.2")}


def test_leftover_routes_survive_restart_until_end_of_rib(tmp_path):
    leftovers = [KernelRoute(R("10.244.2.0/24"), (A("172.31.0.2"),)),
                 KernelRoute(R("10.244.9.0/24"), (A("172.31.0.2"),))]
    agent, source, speakers, table, clock = make_agent(tmp_path, leftovers)
    agent.reconcile()  # no Node list yet: nothing is swept
    assert set(table.kernel) == {R("10.244.2.0/24"), R("10.244.9.0/24")}
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    speakers[0].on_event(RoutesReceived(A("172.31.0.2"), (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    agent.reconcile()
    assert set(table.kernel) == {R("10.244.2.0/24"), R("10.244.9.0/24")}  # still waiting for End-of-RIB
    speakers[0].on_event(EndOfRib(A("172.31.0.2"), "ipv4 unicast"))
    agent.reconcile()
    assert set(table.kernel) == {R("10.244.2.0/24")}  # the route not re-learned is swept


def test_stale_routes_are_swept_at_the_deadline_without_end_of_rib(tmp_path):
    agent, source, _, table, clock = make_agent(tmp_path, [KernelRoute(R("10.244.9.0/24"), (A("172.31.0.2"),))])
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    assert R("10.244.9.0/24") in table.kernel
    clock.now += 11
    agent.reconcile()
    assert table.kernel == {}


def test_speaker_restart_keeps_forwarding_then_relearns(tmp_path):
    agent, source, speakers, table, clock = make_agent(tmp_path)
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    speakers[0].on_event(SpeakerRestarted())  # the first start is announced too and counts as no restart
    speakers[0].on_event(RoutesReceived(A("172.31.0.2"), (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    agent.reconcile()
    speakers[0].on_event(PeerDown(A("172.31.0.2"), "ExaBGP exited (-9)", local=True))
    speakers[0].on_event(SpeakerRestarted())
    agent.reconcile()
    assert R("10.244.2.0/24") in table.kernel and agent.counters.speaker_restarts == 1
    assert agent.rib.routes == {}
    speakers[0].on_event(RoutesReceived(A("172.31.0.2"), (learned("172.31.0.2", "10.244.2.0/24"),), ()))
    speakers[0].on_event(EndOfRib(A("172.31.0.2"), "ipv4 unicast"))
    agent.reconcile()
    assert list(table.kernel) == [R("10.244.2.0/24")]


def test_first_speaker_start_keeps_leftover_stale_routes(tmp_path):
    agent, source, speakers, table, _ = make_agent(tmp_path, [KernelRoute(R("10.244.9.0/24"), (A("172.31.0.2"),))])
    source.on_change({"n1": N1, "n2": N2})
    agent.reconcile()
    speakers[0].on_event(SpeakerRestarted())
    agent.reconcile()
    assert R("10.244.9.0/24") in table.kernel and agent.counters.speaker_restarts == 0


def test_bad_message_is_counted_and_periodic_resync_runs(tmp_path):
    agent, source, speakers, table, clock = make_agent(tmp_path)
    source.on_change({"n1": N1})
    agent.reconcile()
    speakers[0].on_event(BadMessage("{garbage", "Expecting value"))
    assert agent.counters.bad_speaker_messages == 1 and "Expecting value" in agent.counters.last_errors[-1]
    first = table.resyncs
    agent.reconcile()
    assert table.resyncs == first
    clock.now += 61
    agent.reconcile()
    assert table.resyncs == first + 1


def test_run_loop_stops_and_stops_the_speaker(tmp_path):
    agent, source, speakers, table, _ = make_agent(tmp_path)
    source.on_change({"n1": N1, "n2": N2})
    thread = threading.Thread(target=agent.run)
    thread.start()
    for _ in range(200):
        if speakers:
            break
        threading.Event().wait(0.01)
    agent.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and speakers[0].stopped
