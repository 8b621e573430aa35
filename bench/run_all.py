"""The whole benchmark suite in one command: every bench/ script in turn, then one summary table and one JSON file.

    sudo .venv/bin/python bench/run_all.py                     # full sizes (~26 min on a 2-core machine)
    sudo .venv/bin/python bench/run_all.py --quick             # tiny sizes (~3.5 min): what CI runs
    sudo .venv/bin/python bench/run_all.py --only route_install,footprint --output results.json

Each benchmark runs as its own process (a failing one cannot take the others down; each cleans up its own
namespaces) and prints its own table; its machine-readable result is its line starting with `JSON:` (or, for
cni_latency.py, its last line). The summary lists every ratio against its reference with both sides' figures.
Exit status: 0 when every benchmark ran, 1 otherwise (goals missed are reported, not failed: no timed assertions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import format_table  # noqa: E402

BENCHMARKS = ["route_install", "route_apply", "convergence", "footprint", "scale", "cni_latency", "bfd_detection",
              "service_advertisement"]


def extract_result(stdout: str) -> dict | None:
    """The benchmark's JSON document: the last `JSON:` line, else the last line that is a JSON object."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("JSON:"):
            return json.loads(line[len("JSON:"):])
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_one(name: str, quick: bool) -> tuple[dict | None, float, str]:
    argv = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if quick else [])]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    sys.stdout.write(f"\n=== {name} ({elapsed:.1f} s) ===\n")
    sys.stdout.write("".join(line + "\n" for line in proc.stdout.splitlines() if not line.startswith("JSON:")))
    if proc.returncode != 0:
        sys.stdout.write(f"FAILED ({proc.returncode}):\n{proc.stderr[-3000:]}\n")
        return None, elapsed, proc.stderr[-3000:]
    return extract_result(proc.stdout), elapsed, ""


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:.0f}{unit}"


def route_install_rows(install: dict) -> list[list[str]]:
    """route_install's medians against BIRD2 as the receiver, its memory and its resync figures, with goals."""
    goals = install["goals"]
    rows: list[list[str]] = []
    for row in install["rows"]:
        family, n, big = row["family"], row["prefixes"], row["prefixes"] >= 10_000
        for key, label, goal in (("install_s", "install", f"<= {goals['install_ratio'][family]}x" if big else ""),
                                 ("withdraw_s", "withdraw", ""),
                                 ("cpu_s", "CPU to install", f"<= {goals['cpu_ratio']}x" if big else ""),
                                 ("first_route_s", "first route", f"<= {goals['first_route_s'] * 1e3:g} ms")):
            ours, ref = row["bgpnet"][key]["median"] * 1e3, row["bird"][key]["median"] * 1e3
            of_medians = row["ratio"][key]["of_medians"]
            rows.append(["route_install", f"{label} {family} {n} (median of {row['repetitions']})",
                         _fmt(ours, " ms"), _fmt(ref, " ms"), f"{of_medians:.2f}x" if of_medians else "-", goal])
        rss = row["bgpnet"]["rss_mb"]["max"]
        rows.append(["route_install", f"RSS {family} {n} routes", _fmt(rss, " MB"),
                     _fmt(row["bird"]["rss_mb"]["max"], " MB"), f"{rss / row['bird']['rss_mb']['max']:.1f}x",
                     f"<= {goals['rss_mb_at_50k'][family]} MB" if n == 50_000 else ""])
    for family, memory in install["memory"].items():
        churn = memory.get("churn")
        if churn:
            at = churn["rss_at_mb"]["prefixes"]
            rows.append(["route_install", f"RSS {family} after churn + withdrawal / RSS at {at} routes",
                         _fmt(churn["rss_after_mb"], " MB"), _fmt(churn["rss_at_mb"]["mb"], " MB"),
                         f"{churn['ratio']:.2f}x", f"<= {goals['churn_ratio']}x"])
    resync = install.get("resync")
    if resync:
        rows.append(["route_install", f"withdrawal during a resync, {resync['routes']} routes (vs none)",
                     _fmt(resync["withdraw_during_resync_s"]["median"] * 1e3, " ms"),
                     _fmt(resync["withdraw_quiet_s"]["median"] * 1e3, " ms"),
                     f"+{resync['delay_s'] * 1e3:.0f} ms", f"<= +{goals['resync_delay_s'] * 1e3:g} ms"])
    return rows


def bfd_rows(bfd: dict) -> list[list[str]]:
    """Silent-failure detection per mode: p50 of bgpnet and of BIRD2 as the detector, theory as the goal."""
    rows = []
    for mode in bfd["modes"].values():
        ours, ref = mode["bgpnet"]["detect_s"]["p50"], mode["bird"]["detect_s"]["p50"]
        rows.append(["bfd_detection", f"silent failure -> routes gone, {mode['label']} (p50 of "
                     f"{mode['repetitions']})", _fmt(ours * 1e3, " ms"), _fmt(ref * 1e3, " ms"),
                     f"{mode['ratio_p50']:.2f}x", f"theory <= {_fmt(mode['theory_s'] * 1e3, ' ms')}"])
    return rows


def service_rows(service: dict) -> list[list[str]]:
    """EndpointSlice change -> ToR kernel route per change: p50 of bgpnet and of a BIRD2 speaker making it."""
    changes = service.get("endpoint_changes")
    if not changes:
        return []
    rows = []
    for name, change in changes["changes"].items():
        rows.append(["service_advertisement", f"Service {name} -> ToR route, {changes['nodes']} nodes (p50 of "
                     f"{changes['repetitions']})", _fmt(change["bgpnet"]["p50"] * 1e3, " ms"),
                     _fmt(change["bird"]["p50"] * 1e3, " ms"),
                     f"{change['ratio_p50']:.2f}x" if change["ratio_p50"] else "-", ""])
    return rows


def service_other_rows(service: dict) -> list[list[str]]:
    rows = []
    allocation = service.get("allocation")
    if allocation:
        rows.append(["service_advertisement", f"{allocation['services']} LoadBalancer Services, "
                     f"{allocation['nodes']} nodes (median of {len(allocation['runs'])})",
                     f"all allocated {_fmt(allocation['allocated_s'], ' s')}, all at the ToR "
                     f"{_fmt(allocation['announced_s'], ' s')}; creates accepted {_fmt(allocation['create_s'], ' s')}"])
    footprint = service.get("footprint")
    if footprint:
        rows.append(["service_advertisement", f"agent with {footprint['services']} Services / "
                     f"{footprint['endpoints']} endpoints vs without",
                     f"RSS {footprint['with_services']['rss_mb']['agent']:.1f} vs "
                     f"{footprint['without_services']['rss_mb']['agent']:.1f} MB "
                     f"({footprint['agent_rss_difference_mb']:+.1f} MB, goal <= {footprint['rss_goal_mb']} MB); "
                     f"CPU {footprint['agent_cpu_ms_per_slice_change']:.2f} ms per EndpointSlice change"])
    return rows


def ratio_rows(results: dict[str, dict]) -> list[list[str]]:
    """Every ratio of the suite against its reference: (benchmark, measure, bgpnet, reference, ratio, goal)."""
    rows: list[list[str]] = []
    install = results.get("route_install")
    if install:
        rows += route_install_rows(install)
    apply = results.get("route_apply")
    if apply:
        for n, row in apply["routes"].items():
            rows.append(["route_apply", f"kernel apply {n} routes vs ip -batch",
                         _fmt(row["bgpnet"]["apply_s"] * 1e3, " ms"), _fmt(row["ip-batch"]["apply_s"] * 1e3, " ms"),
                         f"{row['bgpnet']['apply_s'] / row['ip-batch']['apply_s']:.2f}x", ""])
    footprint = results.get("footprint")
    if footprint:
        for run in footprint["runs"]:
            rows.append(["footprint", f"RSS, {run['peers']} peers / {run['routes']} routes",
                         _fmt(run["bgpnet"]["rss_mb"], " MB"), _fmt(run["bird"]["rss_mb"], " MB"),
                         f"{run['bgpnet']['rss_mb'] / run['bird']['rss_mb']:.1f}x", f"<= {footprint['goal_mb']} MB"])
            rows.append(["footprint", f"idle CPU, {run['peers']} peers", _fmt(run["bgpnet"]["idle_cpu_percent"], " %"),
                         _fmt(run["bird"]["idle_cpu_percent"], " %"), "-", ""])
    bfd = results.get("bfd_detection")
    if bfd:
        rows += bfd_rows(bfd)
    service = results.get("service_advertisement")
    if service:
        rows += service_rows(service)
    cni = results.get("cni_latency")
    if cni:
        ours, ref = cni["plugins"]["bgpnet-cni"], cni["plugins"]["ptp+host-local"]
        for cmd in ("add", "del"):
            rows.append(["cni_latency", f"{cmd.upper()} median", _fmt(ours[cmd]["median_ms"], " ms"),
                         _fmt(ref[cmd]["median_ms"], " ms"), f"{cni['ratio'][f'{cmd}_median']:.2f}x",
                         f"<= {cni['goal'][cmd]}x"])
    return rows


def other_rows(results: dict[str, dict]) -> list[list[str]]:
    rows: list[list[str]] = []
    conv = results.get("convergence")
    if conv:
        for mode, r in conv["modes"].items():
            rows.append(["convergence", f"{mode}, {r['nodes']} nodes: node join -> CIDR on all others",
                         f"p50 {_fmt(r['join_s']['p50'] * 1e3, ' ms')}, p90 {_fmt(r['join_s']['p90'] * 1e3, ' ms')}"])
            rows.append(["convergence", f"{mode}, {r['nodes']} nodes: agent SIGKILL -> withdrawn everywhere",
                         f"p50 {_fmt(r['kill_s']['p50'] * 1e3, ' ms')}, p90 {_fmt(r['kill_s']['p90'] * 1e3, ' ms')}"])
    downs = (results.get("bfd_detection") or {}).get("false_downs")
    if downs:
        rows.append(["bfd_detection", f"false BFD downs, {downs['rounds']} x {downs['prefixes']} prefixes "
                     f"announced + withdrawn ({downs['bfd']})",
                     f"bgpnet {downs['bgpnet_bfd_downs']}, BIRD peer {downs['peer_bfd_downs']}; announce "
                     f"{_fmt(downs['announce_s']['median'], ' s')}, "
                     f"withdraw {_fmt(downs['withdraw_s']['median'], ' s')}"])
    scale = results.get("scale")
    if scale:
        lab = scale.get("lab")
        if lab:
            rows.append(["scale", f"ToR lab {lab['nodes']} nodes: full convergence",
                         f"{lab['full_convergence_s']} s, {lab['cpu_s_until_converged']['bgpnet_all_nodes']} CPU s"])
            memory = lab["memory_mb_per_node"]
            rows.append(["scale", f"ToR lab {lab['nodes']} nodes: memory per node",
                         f"RSS {memory['rss_mean']} MB, PSS {memory['pss_mean']} MB"])
            rows.append(["scale", f"ToR lab {lab['nodes']} nodes: idle CPU, all nodes",
                         f"{lab['idle_cpu_percent']['bgpnet_all_nodes']} % of one core"])
        src = scale["node_source"]
        rows.append(["scale", f"node source, {src['node_objects']} Node objects",
                     f"sync {src['sync_s']} s, RSS {src['rss_after_sync_mb']:.0f} MB, watch event "
                     f"{src['watch_event_s'] * 1e3:.1f} ms"])
    service = results.get("service_advertisement")
    if service:
        rows += service_other_rows(service)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run that the scripts still work")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--output", type=Path, help="write the combined JSON document here")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else BENCHMARKS
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    results: dict[str, dict] = {}
    failures: dict[str, str] = {}
    durations: dict[str, float] = {}
    for name in names:
        result, durations[name], error = run_one(name, args.quick)
        if result is None:
            failures[name] = error or "no JSON result"
        else:
            results[name] = result
    print("\n=== summary: bgpnet against its references (same run) ===")
    print(format_table(["benchmark", "measure", "bgpnet", "reference", "ratio", "goal"], ratio_rows(results)), end="")
    others = other_rows(results)
    if others:
        print()
        print(format_table(["benchmark", "measure", "result"], others), end="")
    document = {"quick": args.quick, "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                                                  "python": platform.python_version()},
                "durations_s": {k: round(v, 1) for k, v in durations.items()}, "results": results,
                "failures": failures}
    if args.output:
        args.output.write_text(json.dumps(document, indent=2) + "\n")
    print("JSON:", json.dumps(document))
    if failures:
        print(f"FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
