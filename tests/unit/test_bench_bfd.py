"""bench/bfd_detection.py's pure parts: the generated BIRD and agent configs, the nft black hole, BIRD's BFD
session table and log, the summary and the runner's rows (the privileged run is tests/privileged/
test_bench_smoke.py)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import benchlib
import bfd_detection as bench
import run_all

SHOW_BFD = ("1020-bfd1:\n IP address                Interface  State      Since         Interval  Timeout\n"
            " 10.97.1.2                 tonode     Up         2026-12-04 08:13:02.938412    0.300    0.900\n"
            " 10.97.2.2                 tobird     Init       2026-12-04 08:13:03.100000    1.000    3.000\n0000 ")


def test_bird_bfd_sessions_reads_state_since_interval_and_timeout():
    sessions = benchlib.bird_bfd_sessions(SHOW_BFD)
    assert sessions == {
        "10.97.1.2": benchlib.BirdBfdSession("Up", "2026-12-04 08:13:02.938412", 0.3, 0.9),
        "10.97.2.2": benchlib.BirdBfdSession("Init", "2026-12-04 08:13:03.100000", 1.0, 3.0)}
    assert benchlib.bird_bfd_sessions("0000 \n") == {}


def test_bird_bfd_downs_counts_only_up_to_down_of_that_neighbour():
    log = "\n".join(f"2026-12-04 08:11:{i:02d}.000 <TRACE> bfd1: Session to {addr} changed state from {a} to {b}"
                    for i, (addr, a, b) in enumerate([("10.97.1.2", "Down", "Up"), ("10.97.1.2", "Up", "Down"),
                                                      ("10.97.2.2", "Up", "Down"), ("10.97.1.2", "Init", "Down"),
                                                      ("10.97.1.2", "Up", "Down")]))
    assert bench.bird_bfd_downs(log, "10.97.1.2") == 2
    assert bench.bird_bfd_downs(log, "10.97.2.2") == 1


@pytest.mark.parametrize("name", list(bench.MODES))
def test_peer_announces_the_feed_keeps_the_bulk_table_and_both_sessions_disabled_with_the_modes_timers(name, tmp_path):
    mode = bench.MODES[name]
    config = bench.peer_config(mode, 3, 5, tmp_path / "events.log")
    assert "protocol static feed {\n  ipv4;" in config and "protocol static bulk {\n  disabled; ipv4;" in config
    assert config.count("route 10.128.") == 3 and config.count("route 10.16.") == 5
    assert config.count("protocol bgp") == 2 and config.count("  disabled;\n  local 10.97.") == 2
    assert config.count("hold time 9; keepalive time 3;") == 2 and config.count("graceful restart off;") == 2
    timers = f"bfd {{ min rx interval {mode.interval_ms} ms; min tx interval {mode.interval_ms} ms; multiplier 3; }};"
    assert config.count(timers) == (2 if mode.interval_ms else 0)
    assert config.count("bfd { min rx") == (2 if mode.interval_ms else 0)
    assert "debug { states, events };" in config  # the false-down test counts the log's state changes


@pytest.mark.parametrize("name", list(bench.MODES))
def test_anchor_detector_exports_to_its_kernel_with_the_same_timers(name):
    mode = bench.MODES[name]
    config = bench.birddet_config(mode)
    assert "protocol kernel { ipv4 { import none; export all; }; }" in config
    assert "neighbor 10.97.2.1 as 65000;" in config and "hold time 9; keepalive time 3;" in config
    assert ("bfd { min rx" in config) == (mode.interval_ms is not None)


@pytest.mark.skipif(shutil.which("bird") is None, reason="BIRD2 not installed")
@pytest.mark.parametrize("name", list(bench.MODES))
def test_generated_bird_configs_parse(name, tmp_path):
    mode = bench.MODES[name]
    for config in (bench.peer_config(mode, 3, 5, tmp_path / "events.log"), bench.birddet_config(mode)):
        (tmp_path / "bird.conf").write_text(config)
        proc = subprocess.run(["bird", "-p", "-c", str(tmp_path / "bird.conf")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_agent_bfd_settings_global_for_300_ms_a_peer_override_for_100_ms_none_without_bfd():
    global300 = bench.agent_config_changes(bench.MODES["bfd300"])
    assert global300["bfd"] == {"enabled": True, "minRx": 300, "minTx": 300, "multiplier": 3}
    assert "bfd" not in global300["peers"][0]
    override = bench.agent_config_changes(bench.MODES["bfd100"])
    assert override["peers"][0]["bfd"] == {"enabled": True, "minRx": 100, "minTx": 100, "multiplier": 3}
    hold = bench.agent_config_changes(bench.MODES["hold"])
    assert "bfd" not in hold and "bfd" not in hold["peers"][0]
    for changes in (global300, override, hold):
        assert changes["peers"][0]["address"] == "10.97.1.1" and changes["holdTime"] == 9
        assert changes["gracefulRestart"] == {"enabled": False}


def test_black_hole_drops_everything_in_and_out_of_one_interface():
    ruleset = bench.blackhole_ruleset("tonode")
    assert 'hook input priority -300; iifname "tonode" drop;' in ruleset
    assert 'hook output priority -300; oifname "tonode" drop;' in ruleset
    assert ruleset.startswith(f"table inet {bench.BLACKHOLE_TABLE} ")


def test_bulk_table_stays_clear_of_the_feed_the_links_and_the_pod_cidr():
    bulk = [ipaddress.ip_network(p) for p in benchlib.block_prefixes(50_000, *bench.TABLE)]
    others = [ipaddress.ip_network(p) for p in benchlib.block_prefixes(100, *bench.FEED)]
    others += [ipaddress.ip_network(f"{bench.NODE_LINK[0]}/30", strict=False),
               ipaddress.ip_network(f"{bench.BIRD_LINK[0]}/30", strict=False), ipaddress.ip_network("10.244.0.0/16")]
    last = bulk[-1]
    assert all(not (o.overlaps(bulk[0]) or o.overlaps(last) or bulk[0] < o < last) for o in others)
    assert all(p.subnet_of(ipaddress.ip_network(bench.CLUSTER_CIDRS[0])) for p in (bulk[0], last))


def _runs(bgpnet, bird):
    return {"bgpnet": [{"detect_s": d, "recover_s": 1.0, "cause": "bfd"} for d in bgpnet],
            "bird": [{"detect_s": d, "recover_s": 2.0, "cause": "bfd"} for d in bird]}


def test_summary_reports_p50_p90_causes_and_the_ratio_of_the_p50s():
    row = bench.summarize(bench.MODES["bfd300"], _runs([0.8, 0.7, 0.9, 1.0], [0.6, 0.7, 0.8, 0.7]), "0 0 0")
    assert row["bgpnet"]["detect_s"]["p50"] == 0.85 and row["bgpnet"]["detect_s"]["p90"] == 1.0
    assert row["bird"]["detect_s"]["p50"] == 0.7 and row["bird"]["causes"] == {"bfd": 4}
    assert row["ratio_p50"] == pytest.approx(0.85 / 0.7, rel=1e-3) and row["theory_s"] == 0.9
    table = bench.render({"bfd300": row})
    assert "BFD 300 ms x 3" in table and "900" in table and "1.21x" in table


def test_summary_of_one_detector_has_no_ratio():
    row = bench.summarize(bench.MODES["hold"], {"bird": _runs([], [9.1])["bird"]}, "0 0 0")
    assert row["ratio_p50"] is None and "bgpnet" not in row
    assert "hold time 9 s" in bench.render({"hold": row})


def test_runner_lists_detection_per_mode_and_the_false_downs():
    row = bench.summarize(bench.MODES["bfd100"], _runs([0.3], [0.25]), "0 0 0")
    spread = benchlib.spread([0.5])
    results = {"bfd_detection": {"modes": {"bfd100": row}, "false_downs": {
        "rounds": 3, "prefixes": 50000, "bfd": "BFD 300 ms x 3", "bgpnet_bfd_downs": 0, "peer_bfd_downs": 0,
        "announce_s": spread, "withdraw_s": spread}}}
    assert ["bfd_detection", "silent failure -> routes gone, BFD 100 ms x 3 (p50 of 1)", "300 ms", "250 ms",
            "1.20x", "theory <= 300 ms"] in run_all.ratio_rows(results)
    assert any(r[0] == "bfd_detection" and "bgpnet 0, BIRD peer 0" in r[2] for r in run_all.other_rows(results))


@pytest.mark.parametrize("name", list(bench.MODES))
def test_agent_config_of_each_mode_is_accepted_and_gives_the_peer_the_modes_timers(name):
    from bgpnet.config import parse_config

    mode = bench.MODES[name]
    config = parse_config({"asn": bench.NODE_ASN, **bench.agent_config_changes(mode)})
    (peer,) = config.peers
    effective = peer.bfd or config.bfd
    assert effective.enabled == (mode.interval_ms is not None)
    if mode.interval_ms is not None:
        assert (effective.min_rx_ms, effective.min_tx_ms, effective.multiplier) == (mode.interval_ms,) * 2 + (3,)
    assert config.hold_time == peer.hold_time == 9 and not config.graceful_restart.enabled
