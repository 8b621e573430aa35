"""Micro-benchmark of bgpnet's kernel route install path (bgpnet.routes.RouteTable) with anchors.

Puts N IPv4 /26 routes (one gateway on a veth) into a fresh network namespace and withdraws them, with:
  bgpnet            RouteTable.apply (diff + hand-packed netlink, no per-message ack, barrier per chunk)
  bgpnet-ack        the same with NLM_F_ACK on every message (one answer per route)
  ip-batch          `ip -batch` of "route replace ... proto 179" lines (anchor)
  pyroute2          one IPRoute.route('replace') call per route (anchor, at the smallest size only: slow)
and also times a resync (dump of our routes + diff, nothing to change), pyroute2's get_routes dump, and one
withdrawal that arrives as a resync starts: after the whole resync when the resync runs on the apply path
(`resync`, the old behaviour), at once when it runs in the background (`start_resync`, what the agent does).
Each figure is the median of --repeat runs. Prints a table, then one JSON line.

    .venv/bin/python bench/route_apply.py            # 1k, 10k, 50k
    .venv/bin/python bench/route_apply.py --quick    # 200, 1k: a smoke run
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import threading
import time

from pyroute2 import IPRoute

from bgpnet.lab.netns import Netns, NetnsGroup, entered
from bgpnet.model import KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes import RouteTable
from bgpnet.routes.netlink import SocketRouteNetlink

GATEWAY = "172.31.0.2"
BIRD_REFERENCE_S = {10_000: 0.063, 50_000: 0.30}  # BIRD2 receiving node, from /work/shared/ENVIRONMENT.md


def prefixes(n: int) -> list[Prefix]:
    base = int(ipaddress.ip_address("10.128.0.0"))
    return [Prefix(4, base + (i << 6), 26) for i in range(n)]


def count_ours(ns: Netns) -> int:
    return sum(1 for line in ns.run("ip", "route", "show", "proto", "179").stdout.splitlines() if line)


def bench_table(ns: Netns, n: int, *, ack_each: bool) -> dict[str, float]:
    gateway = ipaddress.ip_address(GATEWAY)
    routes = [KernelRoute(p, (gateway,)) for p in prefixes(n)]
    with entered(ns.path):
        table = RouteTable(SocketRouteNetlink(ack_each=ack_each))
    try:
        table.resync([])  # the start-up dump, outside the timed region
        t0 = time.perf_counter()
        added = table.apply(routes)
        t1 = time.perf_counter()
        assert added.added == n and not added.errors, added.errors[:3]
        assert count_ours(ns) == n
        t2 = time.perf_counter()
        resynced = table.resync(routes)
        t3 = time.perf_counter()
        assert (resynced.added, resynced.replaced, resynced.removed) == (0, 0, 0)
        removed = table.apply([])
        t4 = time.perf_counter()
        assert removed.removed == n and count_ours(ns) == 0
    finally:
        table.close()
    return {"apply_s": t1 - t0, "resync_s": t3 - t2, "withdraw_s": t4 - t3}


def bench_ip_batch(ns: Netns, n: int) -> dict[str, float]:
    adds = "".join(f"route replace {p} via {GATEWAY} proto 179\n" for p in prefixes(n))
    dels = "".join(f"route del {p} proto 179\n" for p in prefixes(n))
    t0 = time.perf_counter()
    ns.run("ip", "-batch", "-", input=adds, timeout=600)
    t1 = time.perf_counter()
    assert count_ours(ns) == n
    t2 = time.perf_counter()
    ns.run("ip", "-batch", "-", input=dels, timeout=600)
    t3 = time.perf_counter()
    assert count_ours(ns) == 0
    return {"apply_s": t1 - t0, "withdraw_s": t3 - t2}


def bench_pyroute2(ns: Netns, n: int) -> dict[str, float]:
    nets = [str(p) for p in prefixes(n)]
    with entered(ns.path):
        ipr = IPRoute()
    try:
        t0 = time.perf_counter()
        for dst in nets:
            ipr.route("replace", dst=dst, gateway=GATEWAY, proto=179)
        t1 = time.perf_counter()
        dumped = ipr.get_routes(family=2, proto=179)
        t2 = time.perf_counter()
        assert len(dumped) == n
        for dst in nets:
            ipr.route("del", dst=dst, proto=179)
        t3 = time.perf_counter()
    finally:
        ipr.close()
    return {"apply_s": t1 - t0, "dump_s": t2 - t1, "withdraw_s": t3 - t2}


def bench_withdraw_during_resync(ns: Netns, n: int) -> dict[str, float]:
    """Seconds from a withdrawal's arrival to its delete being acknowledged, when a resync of n routes starts at
    the same moment: waiting behind a blocking resync, or beside a background one."""
    gateway = ipaddress.ip_address(GATEWAY)
    routes = [KernelRoute(p, (gateway,)) for p in prefixes(n)]
    desired = {r.prefix: r for r in routes}
    gone = routes[n // 2].prefix
    remaining = {p: r for p, r in desired.items() if p != gone}
    with entered(ns.path):
        table = RouteTable(SocketRouteNetlink())
    try:
        table.apply(routes)
        t0 = time.perf_counter()
        table.resync(routes)
        table.apply_changes(remaining, {gone})
        blocking = time.perf_counter() - t0
        table.apply(routes)
        done = threading.Event()
        t0 = time.perf_counter()
        with entered(ns.path):  # the background dump opens its own socket, in the node's namespace
            table.start_resync(done.set)
        result = table.apply_changes(remaining, {gone})
        background = time.perf_counter() - t0
        assert result.removed == 1
        assert done.wait(60)
        repaired = table.finish_resync(remaining.values())
        assert repaired is not None and (repaired.added, repaired.removed) == (0, 0)
        table.apply([])
    finally:
        table.close()
    return {"blocking_s": blocking, "background_s": background}


def bench_pyroute2_dump(ns: Netns, n: int) -> float:
    """pyroute2's dump of n routes of ours (installed with the fast path, not timed)."""
    gateway = ipaddress.ip_address(GATEWAY)
    with entered(ns.path):
        table = RouteTable(SocketRouteNetlink())
        ipr = IPRoute()
    try:
        table.apply([KernelRoute(p, (gateway,)) for p in prefixes(n)])
        t0 = time.perf_counter()
        dumped = ipr.get_routes(family=2, proto=179)
        elapsed = time.perf_counter() - t0
        assert len(dumped) == n
        table.apply([])
    finally:
        ipr.close()
        table.close()
    return elapsed


def median_of(repeat: int, run, *args, **kwargs) -> dict[str, float]:
    runs = [run(*args, **kwargs) for _ in range(repeat)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--repeat", type=int)
    args = parser.parse_args()
    sizes = args.sizes or ([200, 1000] if args.quick else [1000, 10_000, 50_000])
    repeat = args.repeat or (1 if args.quick else 3)

    results: dict[str, dict[str, dict[str, float]]] = {}
    with NetnsGroup("bgpb") as group:
        node, peer = group.add("node"), group.add("peer")
        group.veth(node, "eth0", peer, "eth0")
        node.run("ip", "addr", "add", "172.31.0.1/24", "dev", "eth0")
        peer.run("ip", "addr", "add", GATEWAY + "/24", "dev", "eth0")
        for n in sizes:
            row = results[str(n)] = {
                "bgpnet": median_of(repeat, bench_table, node, n, ack_each=False),
                "bgpnet-ack": median_of(repeat, bench_table, node, n, ack_each=True),
                "ip-batch": median_of(repeat, bench_ip_batch, node, n),
            }
            row["withdraw-during-resync"] = median_of(repeat, bench_withdraw_during_resync, node, n)
            if n == min(sizes):
                row["pyroute2"] = median_of(1, bench_pyroute2, node, n)
            else:
                row["pyroute2"] = {"dump_s": bench_pyroute2_dump(node, n)}
            for figures in row.values():
                for key in ("apply", "withdraw"):
                    if f"{key}_s" in figures:
                        figures[f"{key}_routes_per_s"] = n / figures[f"{key}_s"]
            fast, batch = row["bgpnet"], row["ip-batch"]
            row["ratios"] = {"bgpnet_vs_ip_batch": batch["apply_s"] / fast["apply_s"],
                             "bgpnet_vs_ack_each": row["bgpnet-ack"]["apply_s"] / fast["apply_s"]}
            if "apply_s" in row["pyroute2"]:
                row["ratios"]["bgpnet_vs_pyroute2"] = row["pyroute2"]["apply_s"] / fast["apply_s"]
            if n in BIRD_REFERENCE_S:
                row["ratios"]["bgpnet_apply_over_bird_reference"] = fast["apply_s"] / BIRD_REFERENCE_S[n]
            print_row(n, row)
    print("JSON:", json.dumps({"routes": results, "repeat": repeat, "bird_reference_s": BIRD_REFERENCE_S}))


def print_row(n: int, row: dict[str, dict[str, float]]) -> None:
    print(f"\n{n} routes")
    print(f"  {'path':<11} {'apply ms':>9} {'routes/s':>10} {'withdraw ms':>12} {'routes/s':>10} {'dump ms':>8}")
    for name, figures in row.items():
        if name == "ratios":
            continue
        if name == "withdraw-during-resync":
            print(f"  a withdrawal arriving as a resync starts: {figures['blocking_s'] * 1e3:.1f} ms behind a "
                  f"blocking resync, {figures['background_s'] * 1e3:.1f} ms beside a background one")
            continue
        apply_ms = f"{figures['apply_s'] * 1e3:9.1f}" if "apply_s" in figures else f"{'-':>9}"
        apply_rate = f"{figures['apply_routes_per_s']:10,.0f}" if "apply_s" in figures else f"{'-':>10}"
        wd_ms = f"{figures['withdraw_s'] * 1e3:12.1f}" if "withdraw_s" in figures else f"{'-':>12}"
        wd_rate = f"{figures['withdraw_routes_per_s']:10,.0f}" if "withdraw_s" in figures else f"{'-':>10}"
        dump = figures.get("resync_s", figures.get("dump_s"))
        dump_ms = f"{dump * 1e3:8.1f}" if dump is not None else f"{'-':>8}"
        print(f"  {name:<11} {apply_ms} {apply_rate} {wd_ms} {wd_rate} {dump_ms}")
    print("  " + ", ".join(f"{k}={v:.2f}" for k, v in row["ratios"].items()))


if __name__ == "__main__":
    main()
