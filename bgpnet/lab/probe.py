"""Looking at a running lab from outside, by namespace name only: pings, routing tables, BGP convergence.

Works from the lab's JSON description, so `bgpnet lab status` in a later process sees exactly what `up` saw.
Pings run in parallel (one short-lived `ping` per pair), so a failing pair costs its 1 s timeout once, not once
per pair.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from bgpnet.lab.report import PodView, Reachability, pairs


def run_in(netns: str, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout)


def ping(src_netns: str, dst_ip: str) -> bool:
    try:
        return run_in(src_netns, "ping", "-n", "-q", "-c", "1", "-W", "1", dst_ip).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def reachability(pods: Sequence[PodView], workers: int = 16,
                 on_progress: Callable[[int, int], None] | None = None) -> Reachability:
    """Ping every ordered pod pair; `on_progress(done, total)` is called about every tenth of the pairs (a
    200-node lab has ~160,000 of them)."""
    todo = pairs(pods)
    step = max(1, len(todo) // 10)
    reached: dict[tuple[str, str], bool] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(ping, a.netns, b.ip): (a.name, b.name) for a, b in todo}
        for done, future in enumerate(as_completed(futures), 1):
            reached[futures[future]] = future.result()
            if on_progress is not None and (done % step == 0 or done == len(todo)):
                on_progress(done, len(todo))
    return reached


def routes(netns: str) -> str:
    proc = subprocess.run(["ip", "-n", netns, "-4", "route", "show"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else f"(unavailable: {proc.stderr.strip()})"


def bgp_prefixes(netns: str) -> set[str]:
    """The prefixes bgpnet (route protocol 179) installed in a node's main table."""
    out = subprocess.run(["ip", "-n", netns, "-4", "route", "show", "proto", "179"],
                         capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def missing_routes(description: dict[str, Any]) -> dict[str, set[str]]:
    """Per node, the other nodes' pod CIDRs not (yet) in its kernel; empty when BGP has converged."""
    nodes = description["nodes"]
    missing = {}
    for node in nodes:
        want = {other["podCIDR"] for other in nodes if other is not node}
        lacking = want - bgp_prefixes(node["namespace"])
        if lacking:
            missing[node["name"]] = lacking
    return missing


def pod_views(description: dict[str, Any]) -> list[PodView]:
    return [PodView(name=p["name"], node=n["name"], netns=p["namespace"], ip=p["ip"])
            for n in description["nodes"] for p in n["pods"]]


def netns_exists(name: str) -> bool:
    return subprocess.run(["ip", "netns", "pids", name], capture_output=True).returncode == 0
