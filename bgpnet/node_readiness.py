"""Optional: treat a Node that has been NotReady for a while as gone (pure, no I/O).

Off by default (`notReadyGracePeriod: 0`). NotReady only says the kubelet stopped reporting; the node may
still forward perfectly (kubelet crash, API partition), and removing its routes would then cut off pods that
run fine. BGP already removes a dead node's routes when its hold timer expires; this is for clusters whose
peers cannot see the death (e.g. routes held by a ToR) and who prefer a fast cleanup to that risk. The clock
starts when the agent first sees the Node NotReady, not at the condition's lastTransitionTime, so an agent
restart or clock skew between nodes never removes a node early.
"""

from __future__ import annotations

from collections.abc import Mapping

from bgpnet.model import NodeInfo


def not_ready_since(previous: Mapping[str, float], nodes: Mapping[str, NodeInfo], now: float) -> dict[str, float]:
    """When each NotReady node was first seen NotReady (ready or deleted nodes drop out)."""
    return {name: previous.get(name, now) for name, node in nodes.items() if not node.ready}


def gone_nodes(since: Mapping[str, float], now: float, grace: float, own: str) -> frozenset[str]:
    """Nodes NotReady for at least `grace` seconds (never our own: we are evidently running)."""
    if grace <= 0:
        return frozenset()
    return frozenset(name for name, t in since.items() if name != own and now - t >= grace)


def next_change(since: Mapping[str, float], now: float, grace: float, own: str) -> float | None:
    """When the next node crosses the grace period (for the reconcile loop's timer)."""
    if grace <= 0:
        return None
    pending = [t + grace for name, t in since.items() if name != own and t + grace > now]
    return min(pending, default=None)
