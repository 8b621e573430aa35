"""The agent's Node events and natOutgoing calls, driven through its seams (fakes: node source, speaker, route
table, NAT, event sink)."""

from __future__ import annotations

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.agent import Agent
from bgpnet.config import parse_config
from bgpnet.model import LearnedRoute
from bgpnet.prefix import Prefix
from bgpnet.speaker.events import PeerDown, PeerUp, RoutesReceived
from tests.unit.test_agent import N1, N2, N3, FakeNodeSource, FakeRouteTable, FakeSpeaker, deliver_at_once

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes


class FakeNat:
    def __init__(self):
        self.calls = []

    def sync(self, enabled, pod_cidrs, cluster_cidrs, *, force=False):
        self.calls.append((enabled, tuple(pod_cidrs), tuple(cluster_cidrs), force))
        return True


def make(tmp_path, **config):
    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "routeSyncPeriod": 60, **config})
    speakers, events, nat = [], [], FakeNat()
    agent = Agent(cfg, "n1", cni_conf_dir=tmp_path, make_node_source=FakeNodeSource,
                  make_speaker=lambda rid, cb: speakers.append(deliver_at_once(agent, FakeSpeaker(rid, cb)))
                  or speakers[-1],
                  route_table=FakeRouteTable(), outgoing_nat=nat, record_event=events.append)
    agent.start()
    agent._on_nodes({"n1": N1, "n2": N2, "n3": N3})
    agent.reconcile()
    return agent, speakers[0], events, nat


def test_session_changes_and_refused_routes_become_node_events(tmp_path):
    agent, speaker, events, _ = make(tmp_path)
    speaker.on_event(PeerUp(A("172.31.0.2")))
    speaker.on_event(RoutesReceived(A("172.31.0.2"), (LearnedRoute(A("172.31.0.2"), R("10.244.1.0/24"),
                                                                   A("172.31.0.2")),), ()))
    speaker.on_event(PeerDown(A("172.31.0.2"), "hold timer expired"))
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Normal", "BGPSessionUp", "BGP session with 172.31.0.2 (AS 64512) is Established"),
        ("Warning", "BGPRouteRefused", "routes from 172.31.0.2 refused by the import policy: own-pod-cidr"),
        ("Warning", "BGPSessionDown", "BGP session with 172.31.0.2 (AS 64512) went down: hold timer expired")]


def test_a_configuration_problem_is_an_event_once(tmp_path):
    # An IPv6 peer for a node without an IPv6 address: a problem the agent reports and keeps serving.
    agent, _, events, _ = make(tmp_path, peers=[{"address": "fd00::1", "asn": 65000}])
    agent.reconcile()
    problems = [e for e in events if e.reason == "BGPConfigError"]
    assert len(problems) == 1 and "peer fd00::1: this node has no IPv6 address" in problems[0].message


def test_nat_follows_the_nodes_cidrs_and_the_default_depends_on_peers_outside(tmp_path):
    _, _, _, nat = make(tmp_path)
    assert nat.calls[-1] == (True, (N("10.244.1.0/24"),), (N("10.244.0.0/16"),), True)  # first round is a resync
    _, _, _, nat = make(tmp_path, nodeToNodeMesh=False, peers=[{"address": "172.31.0.254", "asn": 65000}])
    assert nat.calls[-1][0] is False
    _, _, _, nat = make(tmp_path, natOutgoing=True, nodeToNodeMesh=False,
                        peers=[{"address": "172.31.0.254", "asn": 65000}])
    assert nat.calls[-1][0] is True


def test_an_update_with_many_refused_prefixes_is_one_event_per_reason(tmp_path):
    _, speaker, events, _ = make(tmp_path)
    peer = A("172.31.0.2")
    refused = tuple(LearnedRoute(peer, R(f"192.168.{i}.0/24"), peer) for i in range(50))
    speaker.on_event(RoutesReceived(peer, refused, ()))
    assert [(e.reason, e.message) for e in events] == [
        ("BGPRouteRefused", "routes from 172.31.0.2 refused by the import policy: outside-cluster-cidrs")]
