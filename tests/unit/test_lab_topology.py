"""The lab's address/ASN plan and the ToR BIRD config rendered from it (pure; golden text)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bgpnet.config import parse_config
from bgpnet.lab.bird import render_bird_config
from bgpnet.lab.topology import ASN_LABEL, PlanError, node_config, plan_lab, tor_peer_config

GOLDEN = Path(__file__).parent / "data" / "lab_bird_tor3.conf"


def test_mesh_plan_puts_every_node_in_the_cluster_asn_with_its_own_address_and_cidr():
    plan = plan_lab(3, 2, "mesh")
    assert plan.tor is None
    assert [(n.name, n.ip, n.asn, n.pod_cidr, n.pods) for n in plan.nodes] == [
        ("node1", "172.31.0.11", 64512, "10.244.1.0/24", 2),
        ("node2", "172.31.0.12", 64512, "10.244.2.0/24", 2),
        ("node3", "172.31.0.13", 64512, "10.244.3.0/24", 2),
    ]


def test_tor_plan_gives_each_node_its_own_asn_and_the_tor_its_address_and_asn():
    plan = plan_lab(2, 1, "tor", "external")
    assert (plan.tor.kind, plan.tor.ip, plan.tor.asn) == ("external", "172.31.0.1", 65000)
    assert [(n.asn, n.labels[ASN_LABEL]) for n in plan.nodes] == [(65001, "65001"), (65002, "65002")]
    # The ToR and the API stand-in do not collide with any node address.
    assert {plan.tor.ip, plan.api_ip}.isdisjoint(n.ip for n in plan.nodes)


def test_largest_plan_keeps_addresses_inside_the_segment_and_asns_private():
    plan = plan_lab(200, 0, "tor")
    assert plan.nodes[-1].ip == "172.31.0.210"
    assert plan.nodes[-1].pod_cidr == "10.244.200.0/24"
    assert all(64512 <= n.asn <= 65534 for n in plan.nodes)
    assert len({n.ip for n in plan.nodes}) == 200


@pytest.mark.parametrize(("args", "message"), [
    ((0,), "--nodes must be 1..200, got 0"),
    ((201,), "--nodes must be 1..200, got 201"),
    ((3, -1), "--pods-per-node must be 0..50, got -1"),
    ((3, 2, "ring"), "--mode must be mesh or tor, got 'ring'"),
    ((3, 2, "tor", "frr"), "--tor must be bird or external, got 'frr'"),
])
def test_impossible_plans_are_rejected_naming_the_option(args, message):
    with pytest.raises(PlanError) as err:
        plan_lab(*args)
    assert str(err.value) == message


def test_tor_peer_fragment_is_accepted_by_the_agents_own_config_parser():
    plan = plan_lab(3, 0, "tor")
    config = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"], **tor_peer_config(plan.tor)})
    assert config.node_to_node_mesh is False
    assert [(str(p.address), p.asn) for p in config.peers] == [("172.31.0.1", 65000)]


def test_bird_config_matches_the_golden_file():
    assert render_bird_config(plan_lab(3, 2, "tor")) == GOLDEN.read_text()


def test_bird_config_is_accepted_by_bird_itself(tmp_path):
    # `bird -p` only parses the configuration: no sockets, no namespaces, no root needed.
    assert shutil.which("bird"), "bird2 is missing: run dev/setup"
    conf = tmp_path / "bird.conf"
    conf.write_text(render_bird_config(plan_lab(3, 2, "tor")))
    proc = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_mesh_plan_has_no_bird_config():
    with pytest.raises(ValueError, match="no ToR"):
        render_bird_config(plan_lab(3))


def test_every_lab_node_runs_bfd_the_agent_accepts_it_and_tor_nodes_peer_with_the_tor():
    for mode in ("mesh", "tor"):
        plan = plan_lab(2, 1, mode)
        fragment = node_config(plan)
        config = parse_config({"asn": plan.cluster_asn, "clusterCIDRs": [plan.cluster_cidr], **fragment})
        assert config.bfd.enabled and (config.bfd.min_rx_ms, config.bfd.multiplier) == (300, 3)
        assert config.node_to_node_mesh is (mode == "mesh")
        assert config.services.enabled is (mode == "tor") and bool(config.load_balancer.pools) is (mode == "tor")
    assert "bfd on;" in render_bird_config(plan_lab(2, 1, "tor"))
