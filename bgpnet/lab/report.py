"""What `bgpnet lab` prints: the pod-to-pod matrix and the routing tables, rendered from plain values (pure).

The matrix is a grid with numbered columns rather than names across the top, so it stays readable at 20+
pods: row i is "pod i (name, IP, node)", column j is "to pod j", ✓ reached and ✗ not, · the pod itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OK, FAIL, SELF = "✓", "✗", "·"


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
