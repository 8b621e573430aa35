"""The agent with Service addresses: changes from the Service source reach the speaker, to routers only (never to
mesh peers), and status/metrics report them — against the fakes of tests/unit/test_agent.py."""

import threading
from dataclasses import replace
from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.agent import SERVICE_SYNC_WAIT, Agent
from bgpnet.config import parse_config
from bgpnet.kube.service_source import ServiceSourceStats
from bgpnet.metrics import families
from bgpnet.model import NodeInfo, ServiceInfo
from bgpnet.speaker.commands import desired_per_peer
from bgpnet.status_view import render
from tests.unit.test_agent import Clock, FakeNodeSource, FakeRouteTable, FakeSpeaker

CFG = parse_config({
    "asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], "startupGracePeriod": 1,
    "peers": [{"address": "172.20.0.254", "asn": 65000}],
    "serviceClusterIPs": ["10.96.0.0/16"], "serviceLoadBalancerIPs": ["198.51.100.0/24"]})
ME = NodeInfo("n1", (A("172.20.0.1"),), (N("10.244.1.0/24"),))
OTHER = NodeInfo("n2", (A("172.20.0.2"),), (N("10.244.2.0/24"),))
WEB = ServiceInfo("default", "web", "LoadBalancer", cluster_ips=(A("10.96.0.10"),),
                  ingress_ips=(A("198.51.100.7"),), external_local=True, load_balancer_class="bgpnet.io/bgp")


SYNCED = ServiceSourceStats(services=1, slices=1, relists=2, api_reachable=True, synced=True)


class FakeServiceSource:
    """The whole ServiceSourcePort: changes are handed in by the test, and whether it has listed yet."""

    def __init__(self, on_change, stats=SYNCED):
        self.on_change, self.stats = on_change, stats

    def run(self, stop: threading.Event) -> None:
        stop.wait()


def build(tmp_path, config=CFG, clock=None, stats=SYNCED):
    """The agent started, its Node known, one reconcile done; speakers stays empty while it waits."""
    sources, services, speakers = [], [], []
    agent = Agent(config, "n1", cni_conf_dir=tmp_path,
                  make_node_source=lambda cb: sources.append(FakeNodeSource(cb)) or sources[-1],
                  make_speaker=lambda rid, cb: speakers.append(FakeSpeaker(rid, cb)) or speakers[-1],
                  route_table=FakeRouteTable(), clock=clock or Clock(),
                  make_service_source=lambda cb: services.append(FakeServiceSource(cb, stats)) or services[-1])
    agent.start()
    sources[0].on_change({"n1": ME, "n2": OTHER})
    agent.reconcile()
    return agent, services, speakers


def make(tmp_path, config=CFG):
    agent, services, speakers = build(tmp_path, config)
    return agent, services, speakers[0]


def per_peer(speaker):
    return {str(peer): {str(a.prefix) for a in anns}
            for peer, anns in desired_per_peer(speaker.peers, speaker.announcements).items()}


def test_service_addresses_go_to_the_router_and_never_to_mesh_peers(tmp_path):
    agent, (source,), speaker = make(tmp_path)
    assert per_peer(speaker) == {"172.20.0.254": {"10.244.1.0/24", "10.96.0.0/16"}, "172.20.0.2": {"10.244.1.0/24"}}
    source.on_change({WEB.key: WEB}, {WEB.key: True})
    agent.reconcile()
    assert per_peer(speaker)["172.20.0.254"] == {"10.244.1.0/24", "10.96.0.0/16", "198.51.100.7/32",
                                                 "10.96.0.10/32"}
    assert per_peer(speaker)["172.20.0.2"] == {"10.244.1.0/24"}
    source.on_change({}, {WEB.key: False})  # the last local endpoint went away
    agent.reconcile()
    assert per_peer(speaker)["172.20.0.254"] == {"10.244.1.0/24", "10.96.0.0/16"}


def test_status_and_metrics_report_service_addresses(tmp_path):
    agent, (source,), _ = make(tmp_path)
    source.on_change({WEB.key: WEB}, {WEB.key: True})
    agent.reconcile()
    snapshot = agent.snapshot()
    assert [(a.prefix, a.kind, a.service) for a in snapshot.services.addresses] == [
        ("10.96.0.0/16", "cluster-cidr", ""), ("10.96.0.10/32", "cluster-ip", "default/web"),
        ("198.51.100.7/32", "load-balancer", "default/web")]
    text = render(snapshot)
    assert "198.51.100.7/32" in text and "default/web" in text and "1 with a local endpoint" in text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families(snapshot) for s in f.samples}
    assert samples[("bgpnet_service_addresses_advertised", (("family", "ipv4"), ("kind", "load-balancer")))] == 1
    assert samples[("bgpnet_service_addresses_advertised", (("family", "ipv4"), ("kind", "cluster-cidr")))] == 1
    assert samples[("bgpnet_services_with_local_endpoints", ())] == 1


def test_without_service_advertisement_configured_no_source_is_started(tmp_path):
    config = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]})
    agent, services, speaker = make(tmp_path, config)
    assert services == [] and not agent.snapshot().services.enabled
    assert {str(a.prefix) for a in speaker.announcements} == {"10.244.1.0/24"}


def test_the_speaker_waits_for_services_to_be_listed_but_not_forever(tmp_path):
    """After a restart, peers holding our routes under graceful restart drop what our first End-of-RIB does not
    cover: the first announcements must already carry the Service addresses."""
    agent, (source,), speakers = build(tmp_path / "a", stats=replace(SYNCED, synced=False))
    assert speakers == []
    source.stats = SYNCED
    source.on_change({WEB.key: WEB}, {WEB.key: True})
    agent.reconcile()
    assert "198.51.100.7/32" in {str(a.prefix) for a in speakers[0].announcements}  # in the very first set
    # A source that never syncs (say, EndpointSlices forbidden) delays the speaker by SERVICE_SYNC_WAIT only.
    clock = Clock()
    late, _, speakers = build(tmp_path / "b", clock=clock, stats=replace(SYNCED, synced=False))
    assert speakers == []
    clock.now += SERVICE_SYNC_WAIT + 1
    late.reconcile()
    assert len(speakers) == 1
