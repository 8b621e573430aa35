"""Bytes per learned route in the agent's own structures (pure: no root, no network).

    .venv/bin/python bench/route_memory.py [--routes 50000] [--family 4|6]

Decodes N prefixes from one peer the way the speaker does (bgpnet.speaker.wire, one UPDATE per 1,000
prefixes), passes them through the RIB with the import policy, builds the desired kernel routes and the route
table's cache (a dict copy, as RouteTable keeps it), and reports what each stage keeps allocated per route
(tracemalloc, so only Python objects: the process RSS is in bench/route_install.py). Prints a table and one
`JSON:` line.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit_json, format_table

from bgpnet.policy import ImportPolicy
from bgpnet.rib import Rib
from bgpnet.routes.desired import DesiredRoutes
from bgpnet.speaker.events import RoutesReceived
from bgpnet.speaker.wire import decode_update

PEER = {4: ipaddress.ip_address("172.31.0.2"), 6: ipaddress.ip_address("fd00::2")}


def update_body(version: int, start: int, count: int) -> bytes:
    """An UPDATE announcing `count` prefixes (/26 or /64) with an AS_PATH and a next hop."""
    origin = bytes([0x40, 1, 1, 0])
    as_path = bytes([0x40, 2, 6, 2, 1]) + (65000).to_bytes(4, "big")
    if version == 4:
        nlri = b"".join(bytes([26]) + (0x0A800000 + ((start + i) << 6)).to_bytes(4, "big") for i in range(count))
        next_hop = bytes([0x40, 3, 4]) + PEER[4].packed
        attributes = origin + as_path + next_hop
        return b"\0\0" + len(attributes).to_bytes(2, "big") + attributes + nlri
    prefixes = b"".join(bytes([64]) + ((0xFD10 << 112) + ((start + i) << 64)).to_bytes(16, "big")[:8]
                        for i in range(count))
    reach = (2).to_bytes(2, "big") + bytes([1, 16]) + PEER[6].packed + b"\0" + prefixes
    mp = bytes([0x90, 14]) + len(reach).to_bytes(2, "big") + reach
    attributes = origin + as_path + mp
    return b"\0\0" + len(attributes).to_bytes(2, "big") + attributes


def measure(routes: int, version: int) -> dict[str, float]:
    policy = ImportPolicy(cluster_cidrs=(ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd10::/16")),
                          own_cidrs=(), own_asn=64512)
    peer = PEER[version]
    tracemalloc.start()
    stages: dict[str, float] = {}
    base = tracemalloc.get_traced_memory()[0]
    rib = Rib()
    for start in range(0, routes, 1000):
        event = decode_update(peer, update_body(version, start, min(1000, routes - start)), True,
                              families=("ipv4 unicast", "ipv6 unicast"))
        assert isinstance(event, RoutesReceived), event
        rib.update(peer, event.announced, event.withdrawn, policy)
    rib.take_changes()
    assert len(rib.routes) == routes
    after_rib = tracemalloc.get_traced_memory()[0]
    stages["rib (learned routes in per-peer tables, best routes)"] = (after_rib - base) / routes
    desired = DesiredRoutes()
    view = desired.rebuild(dict(rib.routes), {}, None)
    after_desired = tracemalloc.get_traced_memory()[0]
    stages["desired kernel routes"] = (after_desired - after_rib) / routes
    cache = dict(view)  # RouteTable keeps its own map of what is installed
    after_cache = tracemalloc.get_traced_memory()[0]
    stages["route table cache"] = (after_cache - after_desired) / routes
    tracemalloc.stop()
    stages["total"] = (after_cache - base) / routes
    del cache
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", type=int, default=50_000)
    parser.add_argument("--family", type=int, choices=[4, 6], action="append")
    args = parser.parse_args(argv)
    results = {f"ipv{v}": measure(args.routes, v) for v in (args.family or [4, 6])}
    rows = [[stage, *(round(results[f][stage]) for f in results)] for stage in next(iter(results.values()))]
    print(format_table(["bytes per route", *results], rows), end="")
    emit_json("route_memory", {"routes": args.routes, "bytes_per_route": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
