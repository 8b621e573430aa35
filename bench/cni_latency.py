"""ADD/DEL latency of bgpnet-cni against the reference ptp + host-local plugins, measured in the same run.

    sudo .venv/bin/python bench/cni_latency.py [--quick] [--rounds N] [--json-only]

A fresh "node" network namespace holds both plugins' host ends; every ADD goes into its own fresh pod
namespace (created beforehand, outside the timing). The timing loop runs inside the node namespace (the
script re-executes itself under `ip netns exec`), spawns each plugin with posix_spawn and measures spawn to
exit, so `ip netns exec` overhead is not counted for either plugin. Calls alternate between the two plugins
so that machine noise hits both alike. IPv4 single-stack for both: one veth, one address, one host route.
Prints a table and one JSON document (medians, p90s, ratios bgpnet-cni / reference).
Goal: ADD <= 1.5x the reference, DEL <= 1.0x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_DIR = "/usr/lib/cni"
GOAL = {"add": 1.5, "del": 1.0}


def plugin_path() -> str:
    installed = Path(sys.executable).parent / "bgpnet-cni"
    return str(installed if installed.exists() else ROOT / "cni" / "bgpnet-cni")


def configs(tmp: Path, plugin: str | None = None) -> dict[str, dict]:
    return {
        "ptp+host-local": {
            "exe": f"{REF_DIR}/ptp",
            "conf": {"cniVersion": "1.0.0", "name": "benchref", "type": "ptp", "ipMasq": False, "mtu": 1500,
                     "ipam": {"type": "host-local", "dataDir": str(tmp / "ref-ipam"),
                              "ranges": [[{"subnet": "10.250.0.0/16"}]]}},
        },
        "bgpnet-cni": {
            "exe": plugin or plugin_path(),
            "conf": {"cniVersion": "1.0.0", "name": "benchbgp", "type": "bgpnet-cni", "mtu": 1500,
                     "podCIDRs": ["10.251.0.0/16"], "dataDir": str(tmp / "bgp-ipam")},
        },
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _run_timed(exe: str, env: dict[str, str], conf_file: str, out_file: str) -> tuple[float, int]:
    stdin_fd = os.open(conf_file, os.O_RDONLY)
    out_fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(exe, [exe], env, file_actions=[(os.POSIX_SPAWN_DUP2, stdin_fd, 0),
                                                            (os.POSIX_SPAWN_DUP2, out_fd, 1)])
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(stdin_fd)
        os.close(out_fd)
    return elapsed, os.waitstatus_to_exitcode(status)


def inner(spec_file: str) -> None:
    """Runs inside the node namespace: time every ADD, then every DEL, alternating plugins."""
    spec = json.loads(Path(spec_file).read_text())
    tmp = Path(spec["tmp"])
    plugins = spec["plugins"]
    timings: dict[str, dict[str, list[float]]] = {name: {"add": [], "del": []} for name in plugins}
    for name, plugin in plugins.items():
        (tmp / f"{name}.json").write_text(json.dumps(plugin["conf"]))
    out_file = str(tmp / "out.json")
    for command in ("add", "del"):
        for round_index in range(spec["rounds"]):
            order = list(plugins) if round_index % 2 == 0 else list(reversed(plugins))
            for name in order:
                env = {"CNI_COMMAND": command.upper(), "CNI_CONTAINERID": f"bench{round_index}",
                       "CNI_NETNS": f"/run/netns/{spec['pods'][name][round_index]}", "CNI_IFNAME": "eth0",
                       "CNI_PATH": REF_DIR, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
                elapsed, code = _run_timed(plugins[name]["exe"], env, str(tmp / f"{name}.json"), out_file)
                if code != 0:
                    raise SystemExit(f"{name} {command.upper()} failed ({code}): {Path(out_file).read_text()}")
                timings[name][command].append(elapsed * 1000)
    print(json.dumps(timings))


def summarize(timings: dict[str, dict[str, list[float]]], rounds: int) -> dict:
    out: dict = {"rounds": rounds, "goal": GOAL, "plugins": {}, "ratio": {}}
    for name, by_cmd in timings.items():
        out["plugins"][name] = {cmd: {"median_ms": round(statistics.median(v), 2),
                                      "p90_ms": round(_percentile(v, 0.9), 2)} for cmd, v in by_cmd.items()}
    ours, ref = out["plugins"]["bgpnet-cni"], out["plugins"]["ptp+host-local"]
    for cmd in ("add", "del"):
        for stat in ("median_ms", "p90_ms"):
            out["ratio"][f"{cmd}_{stat[:-3]}"] = round(ours[cmd][stat] / ref[cmd][stat], 2)
    out["meets_goal"] = out["ratio"]["add_median"] <= GOAL["add"] and out["ratio"]["del_median"] <= GOAL["del"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (5 rounds)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--json-only", action="store_true")
    parser.add_argument("--plugin", help="bgpnet-cni executable to measure (default: the one beside this "
                        "interpreter, else cni/bgpnet-cni)")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    rounds = 5 if args.quick else args.rounds
    tag = f"cnib{uuid.uuid4().hex[:6]}"
    tmp = Path(tempfile.mkdtemp(prefix="cni-bench-"))
    namespaces: list[str] = []
    try:
        node = f"{tag}-node"
        subprocess.run(["ip", "netns", "add", node], check=True)
        namespaces.append(node)
        subprocess.run(["ip", "-n", node, "link", "set", "lo", "up"], check=True)
        plugins = configs(tmp, args.plugin)
        pods: dict[str, list[str]] = {}
        for index, name in enumerate(plugins):
            pods[name] = []
            for r in range(rounds):
                pod = f"{tag}-p{index}-{r}"
                subprocess.run(["ip", "netns", "add", pod], check=True)
                namespaces.append(pod)
                pods[name].append(pod)
        spec = tmp / "spec.json"
        spec.write_text(json.dumps({"tmp": str(tmp), "plugins": plugins, "pods": pods, "rounds": rounds}))
        proc = subprocess.run(["ip", "netns", "exec", node, sys.executable, str(Path(__file__).resolve()),
                               "--inner", str(spec)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark failed: {proc.stderr.strip() or proc.stdout.strip()}")
        report = summarize(json.loads(proc.stdout), rounds)
    finally:
        for ns in reversed(namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.json_only:
        print(f"{'plugin':<16} {'ADD median':>11} {'ADD p90':>9} {'DEL median':>11} {'DEL p90':>9}   (ms, "
              f"{rounds} rounds)")
        for name, stats in report["plugins"].items():
            print(f"{name:<16} {stats['add']['median_ms']:>11.2f} {stats['add']['p90_ms']:>9.2f} "
                  f"{stats['del']['median_ms']:>11.2f} {stats['del']['p90_ms']:>9.2f}")
        r = report["ratio"]
        print(f"{'ratio':<16} {r['add_median']:>10.2f}x {r['add_p90']:>8.2f}x {r['del_median']:>10.2f}x "
              f"{r['del_p90']:>8.2f}x   goal: ADD <= {GOAL['add']}x, DEL <= {GOAL['del']}x")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
