"""The pod-to-pod matrix and routing tables as `bgpnet lab` prints them (pure; golden text)."""

from __future__ import annotations

from bgpnet.lab.report import PodView, all_reached, matrix_json, render_matrix, render_routes

PODS = [PodView("node1-pod0", "node1", "x-n1p0", "10.244.1.1"),
        PodView("node2-pod0", "node2", "x-n2p0", "10.244.2.1"),
        PodView("node3-pod0", "node3", "x-n3p0", "10.244.3.1")]


def everything(ok: bool = True) -> dict[tuple[str, str], bool]:
    return {(a.name, b.name): ok for a in PODS for b in PODS if a is not b}


def test_all_green_matrix():
    assert render_matrix(PODS, everything()) == (
        "pod-to-pod matrix (row pings column, 1 packet):\n"
        "                         1 2 3\n"
        "1 node1-pod0 10.244.1.1  · ✓ ✓\n"
        "2 node2-pod0 10.244.2.1  ✓ · ✓\n"
        "3 node3-pod0 10.244.3.1  ✓ ✓ ·\n"
        "all 6 pod pairs reach each other\n")
    assert all_reached(PODS, everything())


def test_a_failed_pair_is_a_cross_in_its_row_and_counted():
    reached = {**everything(), ("node1-pod0", "node3-pod0"): False}
    text = render_matrix(PODS, reached)
    assert "1 node1-pod0 10.244.1.1  · ✓ ✗\n" in text
    assert text.endswith("1 of 6 pod pairs FAIL\n")
    assert not all_reached(PODS, reached)


def test_a_pair_never_probed_counts_as_failed():
    assert not all_reached(PODS, {})
    assert render_matrix(PODS, {}).endswith("6 of 6 pod pairs FAIL\n")


def test_columns_stay_aligned_past_nine_pods():
    pods = [PodView(f"p{i}", "n", "ns", f"10.0.0.{i}") for i in range(1, 12)]
    lines = render_matrix(pods, {}).splitlines()[1:-1]
    assert len({len(line) for line in lines}) == 1
    assert lines[0].endswith(" 9 10 11")
    assert lines[-1].startswith("11 p11 10.0.0.11")


def test_no_pods():
    assert render_matrix([], {}) == "pod-to-pod matrix: no pods\n"


def test_matrix_json_lists_every_ordered_pair():
    data = matrix_json(PODS, {**everything(), ("node2-pod0", "node1-pod0"): False})
    assert data["allReached"] is False
    assert len(data["pairs"]) == 6
    assert {"from": "node2-pod0", "to": "node1-pod0", "reached": False} in data["pairs"]


def test_routes_are_indented_under_each_namespace():
    text = render_routes({"node1": ["10.244.2.0/24 via 172.31.0.12 dev eth0 proto bgpnet"], "node2": []})
    assert text == "node1 routes:\n  10.244.2.0/24 via 172.31.0.12 dev eth0 proto bgpnet\nnode2 routes:\n"
