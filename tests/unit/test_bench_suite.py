"""The benchmark suite's pure parts: statistics, fib_triestat parsing, generated BIRD configs, summaries, and
the one-command runner's extraction of results (the privileged smoke run is tests/privileged/test_bench_smoke.py)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import benchlib
import footprint
import route_install
import run_all

FIB_TRIESTAT = b"""Basic info: size of leaf: 48 bytes, size of tnode: 40 bytes.
Main:
\tAver depth:     2.42
\tLeaves:         10007
\tPrefixes:       10009
Local:
\tPrefixes:       3
"""


def test_fib_prefixes_come_from_the_first_trie():
    assert benchlib.parse_fib_prefixes(FIB_TRIESTAT) == 10009
    with pytest.raises(ValueError):
        benchlib.parse_fib_prefixes(b"garbage")


def test_fib_counter_reads_this_namespace():
    counter = benchlib.FibCounter()
    try:
        assert counter.count() >= 1
    finally:
        counter.close()


@pytest.mark.parametrize(("values", "q", "expected"), [([3.0], 0.9, 3.0), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9),
                                                      ([5, 1, 3], 0.5, 3)])
def test_percentile_is_nearest_rank(values, q, expected):
    assert benchlib.percentile(values, q) == expected


def test_table_aligns_numbers_right_and_text_left():
    text = benchlib.format_table(["name", "ms"], [["a", 1.5], ["longer", 12.25]])
    lines = text.splitlines()
    assert lines[0].startswith("name  ") and lines[2] == "a       1.500" and lines[3] == "longer   12.2"


def test_feed_prefixes_are_distinct_aligned_26s_inside_the_cluster_cidr():
    prefixes = [ipaddress.ip_network(p) for p in route_install.feed_prefixes(50_000)]
    assert len(set(prefixes)) == 50_000
    cluster = ipaddress.ip_network(route_install.CLUSTER_CIDR)
    assert all(p.prefixlen == 26 and p.subnet_of(cluster) for p in prefixes)
    assert not any(p.overlaps(ipaddress.ip_network("10.244.0.0/16")) for p in prefixes)


def test_injector_has_one_disabled_feed_per_size_and_one_session_per_receiver():
    config = route_install.injector_config([10, 20], [("node1", "172.31.0.11", 64512),
                                                      ("birdnode", "172.31.0.3", 64513)])
    assert config.count("protocol static feed10 {\n  disabled;") == 1
    assert config.count("route 10.128.") == 30
    assert "neighbor 172.31.0.11 as 64512;" in config and "neighbor 172.31.0.3 as 64513;" in config


def test_footprint_farm_splits_the_routes_between_its_peers():
    configs = [footprint.farm_config(i, 3, 10, "172.31.0.11") for i in range(3)]
    assert [c.count("route 10.128.") for c in configs] == [4, 3, 3]
    assert all("strict bind yes;" in c for c in configs)


def test_route_install_summary_reports_ratio_of_medians_and_median_of_ratios():
    runs = {10: [{"install_bgpnet_s": 0.2, "install_bird_s": 0.1, "withdraw_bgpnet_s": 0.1, "withdraw_bird_s": 0.1},
                 {"install_bgpnet_s": 0.3, "install_bird_s": 0.2, "withdraw_bgpnet_s": 0.1, "withdraw_bird_s": 0.05},
                 {"install_bgpnet_s": 0.4, "install_bird_s": 0.1, "withdraw_bgpnet_s": 0.1, "withdraw_bird_s": 0.1}]}
    row = route_install.summarize(runs)["10"]
    assert row["install_bgpnet_s"] == 0.3 and row["install_bird_s"] == 0.1 and row["install_ratio"] == 3.0
    assert row["install_ratio_median_of_runs"] == 2.0 and row["repetitions"] == 3
    assert "3.0x" in route_install.render(route_install.summarize(runs))


def test_profile_summary_ranks_innermost_frames(tmp_path):
    collapsed = tmp_path / "p.txt"
    collapsed.write_text("main;a;hash 30\nmain;b 10\nmain;c;hash 60\n")
    assert route_install.self_time_top(collapsed) == [("hash", 90.0), ("b", 10.0)]


def test_runner_finds_prefixed_and_bare_json_results():
    assert run_all.extract_result("table\nJSON: {\"a\": 1}\n") == {"a": 1}
    assert run_all.extract_result("ADD 1.0\n{\"ratio\": {}}\n") == {"ratio": {}}
    assert run_all.extract_result("no result\n") is None


def test_runner_summary_lists_every_ratio_with_both_sides():
    results = {
        "route_install": {"goal_ratio": 1.25, "sizes": {"10000": {
            "install_bgpnet_s": 0.15, "install_bird_s": 0.1, "install_ratio": 1.5,
            "withdraw_bgpnet_s": 0.1, "withdraw_bird_s": 0.1, "withdraw_ratio": 1.0}}},
        "footprint": {"goal_mb": 70, "runs": [{"peers": 10, "routes": 1000,
                                               "bgpnet": {"rss_mb": 100.0, "idle_cpu_percent": 1.0},
                                               "bird": {"rss_mb": 5.0, "idle_cpu_percent": 0.1}}]},
    }
    rows = run_all.ratio_rows(results)
    assert ["route_install", "install 10000 prefixes (median)", "150 ms", "100 ms", "1.50x", "<= 1.25x"] in rows
    assert any(r[0] == "footprint" and r[2] == "100 MB" and r[3] == "5 MB" and r[4] == "20.0x" for r in rows)
