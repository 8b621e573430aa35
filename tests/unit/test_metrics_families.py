"""The metric families derived from a snapshot: names, types, labels, values, and a clean exposition."""

import dataclasses
import subprocess

import prometheus_client
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from snapshot_samples import full_snapshot

from bgpnet.metrics import AgentCollector, families, make_registry
from bgpnet.policy import REASONS
from bgpnet.snapshot import KubeStatus, PeerStatus


def exposition(snapshot) -> str:
    return generate_latest(make_registry(lambda: snapshot, process=False)).decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def test_session_metrics_per_peer_carry_address_and_asn():
    text = exposition(full_snapshot())
    assert value(text, "bgpnet_bgp_session_up", peer="172.31.0.12", peer_asn="64512") == 1
    assert value(text, "bgpnet_bgp_session_up", peer="172.31.0.13", peer_asn="64513") == 0
    assert value(text, "bgpnet_bgp_session_state", peer="172.31.0.13", peer_asn="64513", state="down") == 1
    assert value(text, "bgpnet_bgp_session_state", peer="172.31.0.13", peer_asn="64513", state="established") == 0
    assert value(text, "bgpnet_bgp_session_state_changes_total", peer="172.31.0.12", peer_asn="64512",
                 state="down") == 1
    assert value(text, "bgpnet_bgp_session_state_since_timestamp_seconds", peer="172.31.0.12",
                 peer_asn="64512") == 1_700_000_000.0 - 125


def test_prefix_counts_and_rejects_with_every_reason_initialised():
    text = exposition(full_snapshot())
    peer = {"peer": "172.31.0.12", "peer_asn": "64512"}
    assert value(text, "bgpnet_bgp_prefixes_accepted", **peer) == 1
    assert value(text, "bgpnet_bgp_prefixes_advertised", **peer) == 1
    assert value(text, "bgpnet_bgp_prefixes_received_total", **peer) == 4
    assert value(text, "bgpnet_bgp_prefixes_rejected_total", **peer, reason="own-pod-cidr") == 2
    for reason in REASONS:  # zero from the start, so the first rejection is a visible increase
        assert ("bgpnet_bgp_prefixes_rejected_total",
                frozenset({**peer, "reason": reason}.items())) in samples(text)


def test_routes_kube_speaker_ipam_and_build_info():
    text = exposition(full_snapshot())
    assert value(text, "bgpnet_kernel_routes", family="ipv4") == 1
    assert value(text, "bgpnet_kernel_routes", family="ipv6") == 0
    assert value(text, "bgpnet_route_sync_errors_total", reason="conflict") == 1
    assert value(text, "bgpnet_route_changes_total", op="delete") == 2
    assert value(text, "bgpnet_kube_node_watch_events_total", type="MODIFIED") == 10
    assert value(text, "bgpnet_kube_node_watch_events_total", type="other") == 1  # "WEIRD": bounded labels
    assert value(text, "bgpnet_kube_node_relists_total") == 1
    assert value(text, "bgpnet_kube_api_reachable") == 1
    assert value(text, "bgpnet_speaker_restarts_total") == 1
    assert value(text, "bgpnet_ipam_addresses_in_use", pod_cidr="10.244.1.0/24") == 2
    assert value(text, "bgpnet_ipam_addresses_capacity", pod_cidr="10.244.1.0/24") == 254
    info = [s for (name, labels), s in samples(text).items() if name == "bgpnet_build_info"]
    assert info == [1.0]
    assert ("bgpnet_ready", frozenset()) in samples(text)


def test_route_sync_duration_is_a_cumulative_histogram():
    text = exposition(full_snapshot())
    assert value(text, "bgpnet_route_sync_duration_seconds_bucket", kind="apply", le="0.0005") == 1
    assert value(text, "bgpnet_route_sync_duration_seconds_bucket", kind="apply", le="0.005") == 2
    assert value(text, "bgpnet_route_sync_duration_seconds_bucket", kind="apply", le="+Inf") == 3
    assert value(text, "bgpnet_route_sync_duration_seconds_count", kind="apply") == 3
    assert abs(value(text, "bgpnet_route_sync_duration_seconds_sum", kind="apply") - 0.7032) < 1e-9


def test_naming_conventions():
    for family in families(full_snapshot()):
        assert family.name.startswith("bgpnet_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        assert "milliseconds" not in family.name and family.documentation


def test_promtool_accepts_the_exposition_including_process_metrics():
    text = generate_latest(make_registry(full_snapshot)).decode()
    assert "process_resident_memory_bytes" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_collector_reads_a_fresh_snapshot_on_every_scrape():
    current = [full_snapshot()]
    registry = make_registry(lambda: current[0], process=False)
    first = generate_latest(registry).decode()
    peers = tuple(dataclasses.replace(p, state="down") if p.address == "172.31.0.12" else p
                  for p in current[0].peers)
    current[0] = full_snapshot(peers=peers, kube=KubeStatus(reachable=False))
    second = generate_latest(registry).decode()
    assert value(first, "bgpnet_bgp_session_up", peer="172.31.0.12", peer_asn="64512") == 1
    assert value(second, "bgpnet_bgp_session_up", peer="172.31.0.12", peer_asn="64512") == 0
    assert value(second, "bgpnet_kube_api_reachable") == 0


def test_a_removed_peer_leaves_no_series():
    only_one = full_snapshot(peers=(PeerStatus(address="172.31.0.12", asn=64512),))
    assert "172.31.0.13" not in exposition(only_one)


def test_nothing_lands_on_the_global_registry():
    before = set(prometheus_client.REGISTRY._names_to_collectors)
    make_registry(full_snapshot)
    AgentCollector(full_snapshot)
    assert set(prometheus_client.REGISTRY._names_to_collectors) == before
    assert "bgpnet_bgp_session_up" not in before
