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


def test_service_bench_tor_merges_paths_and_accepts_only_host_routes_of_its_ranges():
    import service_advertisement as sa

    config = sa.tor_config(sa.plan_of(3))
    assert "merge paths on;" in config and "bfd" not in config
    assert f"{sa.LB_CIDR}{{32,32}}" in config and f"{sa.ANCHOR_CIDR}{{32,32}}" in config
    assert "neighbor range 172.31.0.0/24 external;" in config
    anchor = sa.anchor_config("172.31.0.201", 65201, "172.31.0.1", 65000, enabled=False)
    assert "disabled; ipv4;" in anchor and f"route {sa.ANCHOR_PREFIX} blackhole;" in anchor
    assert 'export where proto = "svc";' in anchor


def test_service_bench_endpoints_put_node1_in_half_and_churn_ends_where_it_started():
    import service_advertisement as sa

    local = [i for i in range(100) if "node1" in sa.endpoint_nodes(i)]
    assert len(local) == 50 and all(len(set(sa.endpoint_nodes(i))) == 10 for i in range(100))
    endpoints, terminating = sa.endpoint_map(7, terminating=True)
    assert len(endpoints) == 10 and terminating == ["node1"]
    assert len({a for addresses in endpoints.values() for a in addresses}) == 10
    plan = sa.churn_plan(local, 20)
    assert len(plan) == 20 and all(plan.count(i) % 2 == 0 for i in set(plan))
    assert "serviceClusterIPs" not in sa.without_services({**sa.SERVICE_CONFIG, "asn": 1})


def test_service_bench_summaries_and_runner_rows():
    import service_advertisement as sa

    samples = {who: {c: [0.002, 0.004, 0.003] if who == "bgpnet" else [0.001] * 3 for c in sa.CHANGES}
               for who in ("bgpnet", "bird")}
    changes = sa.summarize_changes(samples, {"bgpnet": [0.003], "bird": [0.0005]}, 3, "100.64.0.0")
    assert changes["changes"]["move"]["ratio_p50"] == 3.0 and changes["changes"]["move"]["bgpnet"]["p90"] == 0.004
    run = {"rss_mb": {"agent": 80.0, "exabgp": 20.0, "api-helper": 2.0}, "sync_cpu_s": {"agent": 1.0},
           "churn_cpu_s": {"agent": 0.4, "exabgp": 0.2}}
    base = {**run, "rss_mb": {**run["rss_mb"], "agent": 70.0}, "churn_cpu_s": {"agent": 0.0}}
    footprint = sa.summarize_footprint({"with_services": [run], "without_services": [base]}, 1000, 200, 50.0, 500,
                                       10.0)
    assert footprint["agent_rss_difference_mb"] == 10.0 and footprint["meets_rss_goal"]
    assert footprint["agent_cpu_ms_per_slice_change"] == 2.0 and footprint["tree_cpu_ms_per_slice_change"] == 3.0
    result = {"endpoint_changes": changes, "footprint": footprint,
              "allocation": {"services": 500, "nodes": 10, "runs": [{}], "create_s": 1.0, "allocated_s": 2.0,
                             "announced_s": 2.5}}
    rows = run_all.ratio_rows({"service_advertisement": result})
    assert ["service_advertisement", "Service move -> ToR route, 3 nodes (p50 of 3)", "3 ms", "1 ms", "3.00x",
            ""] in rows
    others = run_all.other_rows({"service_advertisement": result})
    assert any("+10.0 MB" in row[2] for row in others) and any("all allocated 2 s" in row[2] for row in others)
    assert "EndpointSlice change" in sa.render_changes(changes) and "+10.0 MB" in sa.render_footprint(footprint)
