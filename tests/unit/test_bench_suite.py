"""The benchmark suite's pure parts: statistics, fib_triestat parsing, generated BIRD configs, summaries, and
the one-command runner's extraction of results (the privileged smoke run is tests/privileged/test_bench_smoke.py)."""

from __future__ import annotations

import ipaddress
import sys
import time
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


@pytest.mark.parametrize(("version", "length"), [(4, 26), (6, 64)])
def test_feeds_are_distinct_aligned_prefixes_inside_the_cluster_cidrs(version, length):
    prefixes = [ipaddress.ip_network(p) for p in route_install.feed_prefixes(50_000, version)]
    assert len(set(prefixes)) == 50_000 and all(p.prefixlen == length for p in prefixes)
    cluster = next(net for net in map(ipaddress.ip_network, route_install.CLUSTER_CIDRS) if net.version == version)
    assert all(p.subnet_of(cluster) for p in prefixes)
    assert not any(p.overlaps(ipaddress.ip_network("10.244.0.0/16")) for p in prefixes if version == 4)


def test_churn_feed_and_single_prefix_do_not_overlap():
    churn = benchlib.block_prefixes(route_install.CHURN_PREFIXES, *route_install.CHURN)
    feed = route_install.feed_prefixes(50_000, 4)
    first = [ipaddress.ip_network(p) for p in (churn[0], churn[-1], feed[0], feed[-1], route_install.SINGLE)]
    assert first[1] < first[2] and first[3] < first[4]  # churn before the feed, the feed before the single prefix
    assert first[4].subnet_of(ipaddress.ip_network("10.0.0.0/8"))


def test_injector_has_disabled_feeds_churn_twice_and_one_disabled_session_per_receiver():
    config = route_install.injector_config({4: [10, 20], 6: [5]}, 3, [("node1", "172.31.0.11", 64512),
                                                                     ("birdnode", "172.31.0.3", 64513)])
    assert config.count("protocol static feed4_10 {\n  disabled;") == 1
    assert config.count("protocol static feed6_5 {\n  disabled;\n  ipv6") == 1
    assert config.count("route 10.128.") == 30 and config.count("route fd20:") == 5
    assert config.count("route 10.16.") == 6 and "preference 250;" in config
    assert "neighbor 172.31.0.11 as 64512;" in config and "neighbor 172.31.0.3 as 64513;" in config
    assert config.count("protocol bgp") == 2 and config.count("  disabled;\n  local 172.31.0.2") == 2
    assert "timeformat protocol iso long us;" in config


def test_footprint_farm_splits_the_routes_between_its_peers():
    configs = [footprint.farm_config(i, 3, 10, "172.31.0.11") for i in range(3)]
    assert [c.count("route 10.128.") for c in configs] == [4, 3, 3]
    assert all("strict bind yes;" in c for c in configs)


def _sample(install, cpu=0.1):
    return {"install_s": install, "first_route_s": 0.01, "withdraw_s": 0.1, "cpu_s": cpu, "rss_mb": 50.0,
            "install_from_enable_s": install + 1, "feed_install_s": install}


def test_route_install_summary_reports_median_range_ratio_of_medians_and_per_repetition_range():
    runs = {"bgpnet": [_sample(0.2), _sample(0.3), _sample(0.4)],
            "bird": [_sample(0.1), _sample(0.2), _sample(0.1)]}
    row = route_install.summarize(4, 10, runs, "0.1 0.2 0.3")
    assert row["bgpnet"]["install_s"]["median"] == 0.3 and row["bgpnet"]["install_s"]["min"] == 0.2
    assert row["bird"]["install_s"]["median"] == 0.1
    assert row["ratio"]["install_s"] == {"of_medians": 3.0, "min": 1.5, "max": 4.0}
    assert row["family"] == "ipv4" and row["prefix_length"] == 26 and row["repetitions"] == 3
    table = route_install.render([row])
    assert "ipv4 10" in table and "300.0 (200.0-400.0)" in table and "3.00x (1.50-4.00)" in table


def test_bird_protocol_time_is_read_with_microseconds():
    reply = ("2002-Name       Proto      Table      State  Since         Info\n"
             "1002-node1      BGP        ---        up     2026-12-04 03:50:20.062915  Established\n"
             " birdnode   BGP        ---        down   2026-12-04 03:50:19.500000\n0000 ")
    since = benchlib.bird_since(reply, "node1")
    assert since - benchlib.bird_since(reply, "birdnode") == pytest.approx(0.562915, abs=1e-6)
    assert since == pytest.approx(time.mktime((2026, 12, 4, 3, 50, 20, 0, 0, -1)) + 0.062915, abs=1e-6)
    with pytest.raises(ValueError):
        benchlib.bird_since(reply, "other")


def test_rt6_stats_entries_are_the_fourth_hex_field():
    assert benchlib.parse_rt6_entries(b"186ab c357 0010 c359 0000 0000 0000\n") == 50009
    with pytest.raises(ValueError):
        benchlib.parse_rt6_entries(b"1 2")


def test_ipv6_counter_reads_this_namespace():
    counter = benchlib.FibCounter(version=6)
    try:
        assert counter.count() >= 0
    finally:
        counter.close()


def test_block_prefixes_are_consecutive_aligned_blocks():
    assert benchlib.block_prefixes(3, "10.0.0.0", 26) == ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26"]
    assert benchlib.block_prefixes(2, "fd20::", 64) == ["fd20::/64", "fd20:0:0:1::/64"]


def test_spread_reports_median_min_max_and_the_sample():
    assert benchlib.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "all": [3.0, 1.0, 2.0]}


def test_runner_finds_prefixed_and_bare_json_results():
    assert run_all.extract_result("table\nJSON: {\"a\": 1}\n") == {"a": 1}
    assert run_all.extract_result("ADD 1.0\n{\"ratio\": {}}\n") == {"ratio": {}}
    assert run_all.extract_result("no result\n") is None


def test_runner_summary_lists_every_ratio_with_both_sides():
    row = route_install.summarize(4, 10000, {"bgpnet": [_sample(0.15)], "bird": [_sample(0.1)]}, "0 0 0")
    results = {
        "route_install": {"goals": route_install.GOALS, "rows": [row], "resync": None,
                          "memory": {"ipv4": {"churn": {"rss_after_mb": 60.0, "rss_at_mb": {"prefixes": 10000,
                                                                                            "mb": 50.0},
                                                        "ratio": 1.2}}}},
        "footprint": {"goal_mb": 70, "runs": [{"peers": 10, "routes": 1000,
                                               "bgpnet": {"rss_mb": 100.0, "idle_cpu_percent": 1.0},
                                               "bird": {"rss_mb": 5.0, "idle_cpu_percent": 0.1}}]},
    }
    rows = run_all.ratio_rows(results)
    assert ["route_install", "install ipv4 10000 (median of 1)", "150 ms", "100 ms", "1.50x", "<= 1.2x"] in rows
    assert ["route_install", "CPU to install ipv4 10000 (median of 1)", "100 ms", "100 ms", "1.00x", "<= 1.3x"] in rows
    assert any(r[1].startswith("RSS ipv4 after churn") and r[4] == "1.20x" for r in rows)
    assert any(r[0] == "footprint" and r[2] == "100 MB" and r[3] == "5 MB" and r[4] == "20.0x" for r in rows)
