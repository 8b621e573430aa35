"""What a first-time user of `bgpnet lab` sees: defaults in --help, contradictory flags refused, one JSON
shape, large labs summarised, namespaces named (pure parts; the privileged lab tests run the real thing)."""

from __future__ import annotations

import io
import json

import pytest

from bgpnet import cli
from bgpnet.lab import commands
from bgpnet.lab.report import GRID_MAX_PODS, PodView, render_matrix, render_namespaces
from bgpnet.lab.state import StateStore


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_help_shows_defaults_and_ranges(capsys):
    up = help_text(capsys, "lab", "up")
    assert "number of nodes, 1..200" in up
    assert "0..50 (default: 2)" in up
    assert "(default: mesh)" in up
    agent = help_text(capsys, "agent")
    assert "(default: /etc/bgpnet/config.yaml)" in agent
    assert "(default: 0.0.0.0:9179)" in agent
    assert "(default: info)" in agent


@pytest.mark.parametrize("argv", [["--nodes", "0"], ["--nodes", "201"], ["--nodes", "2", "--pods-per-node", "51"]])
def test_sizes_out_of_range_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["lab", "up", *argv])
    assert exited.value.code == 2
    assert "must be" in capsys.readouterr().err


@pytest.mark.parametrize(("mode", "tor", "image", "wanted"), [
    ("mesh", "external", False, "--tor external applies to --mode tor only"),
    ("mesh", "bird", False, "--tor bird applies to --mode tor only"),
    ("tor", None, True, "use --mode mesh"),
])
def test_contradictory_lab_flags_are_refused(mode, tor, image, wanted):
    assert wanted in (cli.lab_up_conflict(mode, tor, image) or "")


@pytest.mark.parametrize(("mode", "tor", "image"), [("mesh", None, False), ("tor", None, False),
                                                   ("tor", "external", False), ("mesh", None, True)])
def test_consistent_lab_flags_pass(mode, tor, image):
    assert cli.lab_up_conflict(mode, tor, image) is None


def test_lab_up_with_a_contradiction_exits_2_before_touching_anything(tmp_path, capsys):
    assert cli.main(["lab", "--state-dir", str(tmp_path / "lab"), "up", "--nodes", "2", "--tor", "external"]) == 2
    assert "--tor external applies to --mode tor only" in capsys.readouterr().err
    assert not (tmp_path / "lab").exists()


def test_status_json_without_a_lab_is_json_with_the_same_keys_as_a_full_document(tmp_path):
    out = io.StringIO()
    assert commands.status(StateStore(tmp_path / "lab"), as_json=True, out=out) == 3
    empty = json.loads(out.getvalue())
    full = commands.document("t1", {"mode": "mesh", "nodes": [{"name": "node1"}]}, {"namespaces": {"a": True}},
                             {"matrix": {"allReached": True, "pairs": []}}, 1.5)
    assert set(empty) == set(full)
    assert empty["tag"] is None and empty["complete"] is False and empty["nodes"] == []
    assert full["complete"] is True and full["upSeconds"] == 1.5 and full["namespaces"] == {"a": True}


def pods(count: int) -> list[PodView]:
    return [PodView(f"node{i}-pod0", f"node{i}", f"x-n{i}", f"10.244.{i}.2") for i in range(1, count + 1)]


def test_a_large_lab_gets_a_summary_with_the_failures_not_a_grid():
    many = pods(GRID_MAX_PODS + 1)
    reached = {(a.name, b.name): True for a in many for b in many if a is not b}
    reached[("node1-pod0", "node2-pod0")] = False
    text = render_matrix(many, reached)
    assert max(len(line) for line in text.splitlines()) < 120
    assert "1 of 600 pod pairs FAIL" in text
    assert "node1-pod0 10.244.1.2 -> node2-pod0 10.244.2.2" in text


def test_a_large_lab_lists_at_most_twenty_failures():
    many = pods(GRID_MAX_PODS + 1)
    text = render_matrix(many, {})
    assert "600 of 600 pod pairs FAIL" in text
    assert text.count(" -> ") == 20 and "... and 580 more" in text


def test_namespaces_are_named_per_node_and_pod():
    text = render_namespaces([{"name": "node1", "namespace": "bgplab-ab12-node1",
                               "pods": [{"name": "node1-pod0", "namespace": "bgplab-ab12-n1p0", "ip": "10.244.1.2"}]}])
    assert "node1    bgplab-ab12-node1" in text
    assert "node1-pod0     bgplab-ab12-n1p0  10.244.1.2" in text


def test_agent_with_a_yaml_syntax_error_exits_2_with_one_log_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("asn: 64512\npeers:\n  - address: 10.0.0.1\n   asn: 65000\n")
    assert cli.main(["agent", "--node-name", "n1", "--config", str(config), "--run-dir", str(tmp_path / "run"),
                     "--metrics-address", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not valid YAML" in err and "line 4, column 4" in err


def test_agent_with_a_missing_kubeconfig_exits_2_with_one_log_line(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("asn: 64512\nclusterCIDRs: [10.244.0.0/16]\n")
    assert cli.main(["agent", "--node-name", "n1", "--config", str(config), "--kubeconfig", str(tmp_path / "nope"),
                     "--run-dir", str(tmp_path / "run"), "--rt-protos-dir", str(tmp_path / "protos"),
                     "--metrics-address", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot load Kubernetes credentials from" in err
