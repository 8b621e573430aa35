"""The agent with ToR peers: per-peer policy, max-prefix teardown and restart, MD5 passwords (kept on read
errors, re-read on rotation), next-hop resolution — against the fakes of tests/unit/test_agent.py."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.agent import Agent
from bgpnet.config import PasswordRef, parse_config
from bgpnet.model import KernelRoute, LearnedRoute, Md5Password, NodeInfo
from bgpnet.prefix import Prefix
from bgpnet.routes.resolve import NextHopResolver, RouteAnswer
from bgpnet.speaker.events import PeerUp, RoutesReceived
from tests.unit.test_agent import Clock, FakeNodeSource, FakeRouteTable, FakeSpeaker, deliver_at_once

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

TOR = A("172.19.1.1")
REF = PasswordRef("bgpnet-system", "bgpnet-bgp-passwords", "tor")
CFG = parse_config({
    "asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "nodeToNodeMesh": False, "routeSyncPeriod": 30,
    "startupGracePeriod": 1,
    "peers": [{"address": "172.19.1.1", "asn": 65100,
               "password": {"secret": {"namespace": "bgpnet-system", "name": "bgpnet-bgp-passwords", "key": "tor"}},
               "importPolicy": {"maxPrefixes": 2, "maxPrefixAction": "teardown", "restartAfter": 60,
                                "acceptDefaultRoute": True}}]})
ME = NodeInfo("n1", (A("172.20.1.2"),), (N("10.244.1.0/24"),), labels=(("bgpnet.io/asn", "65001"),))


class Kernel:
    """The kernel's answers: the ToR's loopback and other racks' nodes are behind 172.20.1.1."""

    def route_get(self, destination):
        if destination == A("172.20.1.1"):
            return RouteAnswer(None, A("172.20.1.2"))
        return RouteAnswer(A("172.20.1.1"), A("172.20.1.2"))

    def close(self):
        pass


class Passwords:
    def __init__(self):
        self.value, self.fail, self.reads = "one", False, 0

    def __call__(self, ref):
        assert ref == REF
        self.reads += 1
        if self.fail:
            raise RuntimeError(f"MD5 password ({ref}): API unreachable")
        return Md5Password(self.value)


def make(tmp_path):
    sources, speakers, table, clock, passwords = [], [], FakeRouteTable(), Clock(), Passwords()
    agent = Agent(CFG, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=table, clock=clock, read_password=passwords,
                  next_hops=NextHopResolver(Kernel()))
    agent.start()
    sources[0].on_change({"n1": ME})
    clock.now += 2  # past the start-up grace period
    agent.reconcile()
    return agent, speakers[0], table, clock, passwords


def routes(*prefixes, path=(65100, 65002), next_hop="172.20.5.2"):
    return tuple(LearnedRoute(TOR, R(p), A(next_hop), path) for p in prefixes)


def test_tor_peer_uses_node_asn_kernel_source_and_password(tmp_path):
    agent, speaker, _, _, passwords = make(tmp_path)
    (peer,) = speaker.peers
    assert (peer.address, peer.local_asn, peer.local_address, peer.md5) == (TOR, 65001, A("172.20.1.2"),
                                                                            Md5Password("one"))
    assert passwords.reads == 1


def test_learned_next_hops_are_installed_via_the_resolved_gateway_and_default_is_accepted(tmp_path):
    agent, speaker, table, _, _ = make(tmp_path)
    speaker.on_event(PeerUp(TOR))
    speaker.on_event(RoutesReceived(TOR, routes("10.244.2.0/24", "0.0.0.0/0"), ()))
    agent.reconcile()
    assert table.kernel == {R("10.244.2.0/24"): KernelRoute(R("10.244.2.0/24"), (A("172.20.1.1"),)),
                            R("0.0.0.0/0"): KernelRoute(R("0.0.0.0/0"), (A("172.20.1.1"),))}


def test_max_prefix_teardown_removes_the_peer_then_restores_it(tmp_path):
    agent, speaker, table, clock, _ = make(tmp_path)
    speaker.on_event(RoutesReceived(TOR, routes("10.244.2.0/24", "10.244.3.0/24", "10.244.4.0/24"), ()))
    agent.reconcile()
    assert speaker.peers == frozenset() and table.kernel == {}
    assert agent.counters.rejected[(TOR, "max-prefix")] == 3
    speaker.on_event(RoutesReceived(TOR, routes("10.244.2.0/24"), ()))  # in flight: refused as a whole
    assert agent.counters.rejected[(TOR, "max-prefix")] == 4 and agent.rib.accepted(TOR) == 0
    clock.now += 61
    agent.reconcile()
    assert {p.address for p in speaker.peers} == {TOR}


def test_password_rotation_is_picked_up_and_a_failed_read_keeps_the_last_good_one(tmp_path):
    agent, speaker, _, clock, passwords = make(tmp_path)
    passwords.fail = True
    clock.now += 31
    agent.reconcile()
    assert next(iter(speaker.peers)).md5 == Md5Password("one")
    passwords.fail, passwords.value = False, "two"
    clock.now += 31
    agent.reconcile()
    assert next(iter(speaker.peers)).md5 == Md5Password("two")


def test_own_asn_loop_from_the_tor_is_dropped_and_counted(tmp_path):
    agent, speaker, table, _, _ = make(tmp_path)
    speaker.on_event(RoutesReceived(TOR, routes("10.244.2.0/24", path=(65100, 65001)), ()))
    agent.reconcile()
    assert table.kernel == {} and agent.counters.rejected[(TOR, "as-path-loop")] == 1
