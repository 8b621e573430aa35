"""The benchmark suite still runs end to end: `bench/run_all.py --quick` (tiny sizes, ~3 min) as CI runs it.

Asserts that every benchmark produced its result with sane content (routes really installed and withdrawn on
both receivers, memory and CPU read from live processes, convergence observed in both modes, silent failures
detected by both detectors in every mode and the false-down count reported), never how fast:
timings on a shared CI machine are not test outcomes. Leaves no namespaces behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BENCH_PREFIXES = ("bgpri", "bgpcv", "bgpfp", "bgpsc", "bgpbfd", "bgpb", "bgpsv", "cnib")


def _bench_namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.split() and line.startswith(BENCH_PREFIXES)}


def test_quick_suite_runs_every_benchmark_and_reports_results(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("privileged test needs root (run the README's test command with sudo)")
    before = _bench_namespaces()
    output = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--output", str(output)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    document = json.loads(output.read_text())
    assert document["failures"] == {}
    results = document["results"]
    assert set(results) == {"route_install", "route_apply", "convergence", "footprint", "scale", "cni_latency",
                            "bfd_detection", "service_advertisement"}

    install = results["route_install"]
    rows = {(row["family"], row["prefixes"]): row for row in install["rows"]}
    assert set(rows) == {("ipv4", 200), ("ipv6", 200)}
    for row in rows.values():  # both receivers really installed and withdrew every route, one at a time
        for receiver in ("bgpnet", "bird"):
            for key in ("install_s", "first_route_s", "withdraw_s", "cpu_s", "rss_mb", "feed_install_s"):
                assert row[receiver][key]["median"] > 0, (row["family"], receiver, key)
        assert row["ratio"]["install_s"]["of_medians"] == pytest.approx(
            row["bgpnet"]["install_s"]["median"] / row["bird"]["install_s"]["median"], rel=0.02)
    assert install["memory"]["ipv4"]["idle_mb"]["bgpnet"] > install["memory"]["ipv4"]["idle_mb"]["bird"] > 0
    assert install["resync"]["withdraw_quiet_s"]["median"] > 0 and len(install["resync"]["overlapped"]) == 1
    assert "install (from Established), ms" in proc.stdout and "during a resync" in proc.stdout

    for mode in ("mesh", "tor"):
        conv = results["convergence"]["modes"][mode]
        assert conv["repetitions"] == 1 and conv["join_s"]["p50"] > 0 and conv["kill_s"]["p50"] > 0

    run = results["footprint"]["runs"][0]
    assert set(run["bgpnet"]["rss_mb_by_process"]) == {"agent", "exabgp", "api-helper"}
    assert run["bgpnet"]["rss_mb"] > run["bird"]["rss_mb"] > 0

    scale = results["scale"]
    assert scale["lab"]["full_convergence_s"] > 0 and scale["lab"]["memory_mb_per_node"]["pss_mean"] > 0
    assert scale["node_source"]["nodes"] == scale["node_source"]["node_objects"]

    bfd = results["bfd_detection"]
    assert set(bfd["modes"]) == {"bfd300", "bfd100", "hold"}
    for name, mode in bfd["modes"].items():  # every repetition of both detectors saw the routes go and come back
        for detector in ("bgpnet", "bird"):
            figures = mode[detector]
            assert len(figures["detect_s"]["all"]) == 2 and min(figures["detect_s"]["all"]) > 0, (name, detector)
            assert min(figures["recover_s"]["all"]) > 0, (name, detector)
            # BFD modes are detected by BFD, the other by the hold timer: which mechanism, not how fast
            assert figures["causes"] == {"hold" if mode["interval_ms"] is None else "bfd": 2}, (name, detector)
        assert mode["theory_s"] > 0 and mode["ratio_p50"] > 0
    downs = bfd["false_downs"]
    assert downs["rounds"] == 3 and downs["prefixes"] == 2000
    assert isinstance(downs["bgpnet_bfd_downs"], int) and isinstance(downs["peer_bfd_downs"], int)
    assert downs["announce_s"]["median"] > 0 and downs["withdraw_s"]["median"] > 0
    assert "bgpnet/BIRD p50" in proc.stdout and "false downs" in proc.stdout

    service = results["service_advertisement"]
    changes = service["endpoint_changes"]
    assert changes["nodes"] == 3 and changes["repetitions"] == 3
    for name, change in changes["changes"].items():  # every change reached the ToR's kernel, on both sides
        for side in ("bgpnet", "bird"):
            assert len(change[side]["all"]) == 3 and min(change[side]["all"]) > 0, (name, side)
    allocation = service["allocation"]
    assert allocation["services"] == 50 and 0 < allocation["create_s"] and allocation["announced_s"] > 0
    footprint = service["footprint"]
    assert footprint["services"] == 100 and footprint["endpoints"] == 1000 and footprint["churn_changes"] == 20
    for variant in ("with_services", "without_services"):
        assert set(footprint[variant]["rss_mb"]) == {"agent", "exabgp", "api-helper"}
        assert footprint[variant]["rss_mb"]["agent"] > 0 and footprint[variant]["sync_cpu_s"]["agent"] > 0
    assert "EndpointSlice change -> ToR kernel" in proc.stdout

    assert results["cni_latency"]["rounds"] == 5
    assert "summary: bgpnet against its references" in proc.stdout
    assert _bench_namespaces() <= before
