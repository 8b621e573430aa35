"""`bgpnet status --all-nodes`: every node's agent at once, asked at its Node's address (what `cilium bgp
peers` or Calico's per-node BGP status give an operator).

Each agent serves its own `/status` document on the metrics port; this module asks them all in parallel
(`gather`, with the HTTP fetch injected) and renders the answers (pure): one line per node — agent answering,
ready, sessions up of configured, routes in and out, last error — then one line per BGP session with its state
and age. A node whose agent does not answer is listed as such, with why, never left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bgpnet.snapshot import AgentSnapshot
from bgpnet.status_view import STATE_NAMES, duration, table


@dataclass(frozen=True)
class NodeAgent:
    """One Node and what its agent answered (`document` None: no answer, `error` says why)."""

    node: str
    address: str | None             # host:port asked, None when the Node has no InternalIP
    document: Mapping[str, Any] | None = None
    error: str = ""

    @property
    def snapshot(self) -> AgentSnapshot | None:
        return AgentSnapshot.from_dict(self.document) if self.document is not None else None


def gather(nodes: Sequence[tuple[str, str | None]], fetch: Callable[[str], Mapping[str, Any]], port: int,
           workers: int = 16) -> list[NodeAgent]:
    """Ask every (node name, InternalIP) for its agent's status at `port`; `fetch(host:port)` raises on no
    answer. In the order given (the API's, by name)."""

    def ask(node: tuple[str, str | None]) -> NodeAgent:
        name, ip = node
        if ip is None:
            return NodeAgent(name, None, error="the Node has no InternalIP")
        address = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        try:
            return NodeAgent(name, address, fetch(address))
        except Exception as exc:  # one node failing to answer, however, is shown in its row, never raised
            return NodeAgent(name, address, error=str(exc) or type(exc).__name__)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(nodes)))) as pool:
        return list(pool.map(ask, nodes))


def render(agents: Sequence[NodeAgent]) -> str:
    """The nodes table, then the sessions table."""
    node_rows, session_rows = [], []
    for agent in agents:
        snapshot = agent.snapshot
        if snapshot is None:
            node_rows.append((agent.node, "NO ANSWER", "-", "-", "-", "-", agent.error))
            continue
        health = (agent.document or {}).get("health", {})
        ready = {True: "yes", False: "NO"}.get(health.get("ready"), "?")
        up = sum(p.established for p in snapshot.peers)
        routes_in = sum(snapshot.routes.installed.values())
        last_error = snapshot.last_errors[-1] if snapshot.last_errors else ""
        problems = health.get("ready_problems") or []
        node_rows.append((agent.node, "answering", ready, f"{up}/{len(snapshot.peers)}", routes_in,
                          len(snapshot.announced), last_error or (problems[0] if problems else "")))
        for peer in snapshot.peers:
            age = duration(snapshot.taken_at - peer.since) if peer.since else "-"
            session_rows.append((agent.node, peer.address, peer.asn, STATE_NAMES.get(peer.state, peer.state), age,
                                 peer.prefixes_accepted, peer.prefixes_advertised,
                                 "" if peer.established else peer.last_down_reason))
    nodes = table(("NODE", "AGENT", "READY", "SESSIONS", "ROUTES IN", "OUT", "LAST ERROR / NOT READY"), node_rows,
                  right=frozenset({4, 5}))
    answered = sum(a.document is not None for a in agents)
    out = [f"{len(agents)} nodes, {answered} agents answered", "", nodes, ""]
    if session_rows:
        out.append(table(("NODE", "PEER", "ASN", "STATE", "FOR", "IN", "OUT", "WHY DOWN"), session_rows,
                         right=frozenset({2, 5, 6})))
    else:
        out.append("No BGP sessions reported.")
    return "\n".join(out) + "\n"


def to_json(agents: Sequence[NodeAgent]) -> dict[str, Any]:
    """One document: per node, the agent's own `/status` document or the error."""
    return {"nodes": [{"node": a.node, "address": a.address, "answered": a.document is not None,
                       "error": a.error or None, "status": a.document} for a in agents]}
