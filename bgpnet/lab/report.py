"""What `bgpnet lab` prints: the pod-to-pod matrix and the routing tables, rendered from plain values (pure).

The matrix is a grid with numbered columns rather than names across the top, so it stays readable at 20+
pods: row i is "pod i (name, IP, node)", column j is "to pod j", ✓ reached and ✗ not, · the pod itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OK, FAIL, SELF = "✓", "✗", "·"
# Beyond this many pods a grid is wider than a terminal (200 nodes × 2 pods would be 400 columns): the
# matrix is then summarised as counts and the failing pairs, and the full list stays in `--json`.
GRID_MAX_PODS = 24
FAILURES_LISTED = 20


@dataclass(frozen=True)
class PodView:
    name: str
    node: str
    netns: str
    ip: str


Reachability = Mapping[tuple[str, str], bool]  # (from pod name, to pod name) -> reached


def pairs(pods: Sequence[PodView]) -> list[tuple[PodView, PodView]]:
    return [(a, b) for a in pods for b in pods if a is not b]


def all_reached(pods: Sequence[PodView], reached: Reachability) -> bool:
    return all(reached.get((a.name, b.name), False) for a, b in pairs(pods))


def render_matrix(pods: Sequence[PodView], reached: Reachability) -> str:
    if not pods:
        return "pod-to-pod matrix: no pods\n"
    if len(pods) > GRID_MAX_PODS:
        return _matrix_summary(pods, reached)
    width = len(str(len(pods)))
    labels = [f"{i:>{width}} {p.name} {p.ip}" for i, p in enumerate(pods, 1)]
    label_width = max(len(label) for label in labels)
    header = " " * label_width + "  " + " ".join(f"{i:>{width}}" for i in range(1, len(pods) + 1))
    lines = [header]
    for label, src in zip(labels, pods, strict=True):
        cells = [SELF if src is dst else (OK if reached.get((src.name, dst.name), False) else FAIL)
                 for dst in pods]
        lines.append(f"{label:<{label_width}}  " + " ".join(f"{c:>{width}}" for c in cells))
    failed = sum(not reached.get((a.name, b.name), False) for a, b in pairs(pods))
    total = len(pairs(pods))
    verdict = f"all {total} pod pairs reach each other" if not failed else f"{failed} of {total} pod pairs FAIL"
    return "pod-to-pod matrix (row pings column, 1 packet):\n" + "\n".join(lines) + f"\n{verdict}\n"


def _matrix_summary(pods: Sequence[PodView], reached: Reachability) -> str:
    failed = [(a, b) for a, b in pairs(pods) if not reached.get((a.name, b.name), False)]
    total = len(pairs(pods))
    lines = [f"pod-to-pod matrix: {len(pods)} pods, {total} ordered pairs, 1 packet each "
             f"(more than {GRID_MAX_PODS} pods: summary, every pair in --json)"]
    if not failed:
        lines.append(f"all {total} pod pairs reach each other")
    else:
        lines.append(f"{len(failed)} of {total} pod pairs FAIL:")
        lines += [f"  {a.name} {a.ip} -> {b.name} {b.ip}" for a, b in failed[:FAILURES_LISTED]]
        if len(failed) > FAILURES_LISTED:
            lines.append(f"  ... and {len(failed) - FAILURES_LISTED} more")
    return "\n".join(lines) + "\n"


def render_namespaces(nodes: Sequence[Mapping]) -> str:
    """Which network namespace is which node and pod (the lab description's `nodes`), for `ip netns exec`."""
    lines = ["namespaces (`ip netns exec NAME sh` for a shell):"]
    for node in nodes:
        lines.append(f"  {node['name']:<8} {node['namespace']}")
        lines += [f"    {pod['name']:<14} {pod['namespace']}  {pod['ip']}" for pod in node.get("pods", [])]
    return "\n".join(lines) + "\n"


def render_routes(routes: Mapping[str, Sequence[str]]) -> str:
    """Each namespace's IPv4 routing table (lines of `ip route`), headed by its name."""
    out = []
    for name, lines in routes.items():
        out.append(f"{name} routes:")
        out.extend(f"  {line}" for line in lines)
    return "\n".join(out) + "\n"


def matrix_json(pods: Sequence[PodView], reached: Reachability) -> dict:
    return {"allReached": all_reached(pods, reached),
            "pairs": [{"from": a.name, "to": b.name, "reached": reached.get((a.name, b.name), False)}
                      for a, b in pairs(pods)]}
