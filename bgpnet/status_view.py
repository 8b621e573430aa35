"""`bgpnet status` output: an agent snapshot rendered as text tables or JSON (pure).

Plain column formatting, no table library: the output is a handful of short columns, and a dependency
(tabulate, rich) would add to the agent image for nothing an operator would notice. Columns are padded to
their widest cell, numbers right-aligned, like `birdc show protocols`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bgpnet.snapshot import AgentSnapshot, BfdStatus, PeerStatus

STATE_NAMES = {"established": "Established", "connected": "Connect", "idle": "Idle", "down": "Down"}


def duration(seconds: float) -> str:
    """3725 -> "1h2m5s"; the largest two units, enough to tell a fresh session from an old one."""
    seconds = max(0, int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: frozenset[int] = frozenset()) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _since(peer: PeerStatus, now: float) -> str:
    if not peer.since:
        return "-"
    return f"{duration(now - peer.since)} ago"


def _state(peer: PeerStatus) -> str:
    name = STATE_NAMES.get(peer.state, peer.state)
    if peer.state == "down" and peer.last_down_reason:
        return f"{name} ({peer.last_down_reason})"
    return name


def peers_table(snapshot: AgentSnapshot) -> str:
    if not snapshot.peers:
        return "No BGP peers configured."
    bfd = {s.peer: s.state for s in snapshot.bfd}
    rows = [(p.address, p.asn, _state(p), _since(p, snapshot.taken_at), bfd.get(p.address, "-"),
             p.prefixes_accepted, p.prefixes_advertised, sum(p.rejected.values()), _malformed(p), p.description)
            for p in snapshot.peers]
    return table(("PEER", "ASN", "STATE", "SINCE", "BFD", "IN", "OUT", "REJECTED", "MALFORMED", "DESCRIPTION"),
                 rows, right=frozenset({1, 5, 6, 7}))


DIAGNOSTICS = {0: "-", 1: "detection time expired", 3: "neighbor said down", 7: "admin down"}


def bfd_table(snapshot: AgentSnapshot) -> str:
    """The BFD sessions, with their negotiated and configured detection times and what they hold down."""
    rows = [(s.peer, s.state, _ms(s.negotiated_detect_ms), _ms(s.configured_detect_ms), _ms(s.tx_ms),
             s.state_changes.get("Down", 0), DIAGNOSTICS.get(s.diag, str(s.diag)), _bfd_effect(s))
            for s in snapshot.bfd]
    return table(("BFD PEER", "STATE", "DETECT", "CONFIGURED", "TX", "DOWNS", "LAST DIAG", "BGP"), rows,
                 right=frozenset({2, 3, 4, 5}))


def services_lines(snapshot: AgentSnapshot) -> list[str]:
    """The Service addresses this node announces to its routers, with kind and Service."""
    services = snapshot.services
    head = (f"Services: {services.services} known, {services.local_endpoints} with a local endpoint, "
            f"{'synced' if services.synced else 'NOT SYNCED'}, {services.api_errors} API errors")
    ignored = ", ".join(f"{n} {reason}" for reason, n in services.ignored.items() if n)
    if ignored:
        head += f"; not announced: {ignored}"
    if not services.addresses:
        return [head, "Service addresses announced: none"]
    rows = [(a.prefix, a.kind, a.service or "-") for a in services.addresses]
    return [head, table(("SERVICE ADDRESS", "KIND", "SERVICE"), rows)]


def allocator_lines(snapshot: AgentSnapshot) -> list[str]:
    lb = snapshot.load_balancer
    if not lb.leader:
        return [f"LoadBalancer allocator: standing by (leader: {lb.holder or 'none yet'})"]
    lines = [f"LoadBalancer allocator: LEADER, {lb.services} Services served, {lb.pending} pending, "
             f"{lb.allocation_failures} allocation failures"]
    if lb.pools:
        lines.append(table(("POOL", "FAMILY", "IN USE", "CAPACITY"),
                           [(p.name, p.family, p.in_use, p.capacity) for p in lb.pools], right=frozenset({2, 3})))
    return lines


def _ms(value: float) -> str:
    return f"{value:.0f}ms" if value else "-"


def _bfd_effect(session: BfdStatus) -> str:
    return "held down until BFD is Up" if session.holding_bgp_down else "-"


def _malformed(peer: PeerStatus) -> str:
    """Malformed UPDATEs by RFC 7606 action, e.g. "2 withdraw, 1 reset"; "0" when none."""
    parts = [f"{n} {action.split('-')[-1] if action != 'treat-as-withdraw' else 'withdraw'}"
             for action, n in sorted(peer.malformed.items()) if n]
    return ", ".join(parts) or "0"


def _when(timestamp: float | None, now: float) -> str:
    return "never" if timestamp is None else f"{duration(now - timestamp)} ago"


def render(snapshot: AgentSnapshot, health: Mapping[str, Any] | None = None) -> str:
    """The human-readable status: header, peers, announcements, routes, IPAM, errors."""
    now = snapshot.taken_at
    health = health or {}
    ready = health.get("ready")
    ready_text = {True: "ready", False: "NOT READY", None: "readiness unknown"}[ready]
    lines = [f"bgpnet {snapshot.version} on node {snapshot.node}: {ready_text}, "
             f"up {duration(now - snapshot.started_at)}"]
    for problem in health.get("ready_problems", ()):
        lines.append(f"  not ready: {problem}")
    if health.get("live") is False:
        for problem in health.get("live_problems", ()):
            lines.append(f"  UNHEALTHY: {problem}")
    speaker = snapshot.speaker
    lines.append(f"Speaker: ExaBGP {'pid ' + str(speaker.pid) if speaker.running else 'not running'}, "
                 f"{speaker.restarts} restarts, {speaker.channel_restarts} API channel restarts")
    kube = snapshot.kube
    lines.append(f"Kubernetes API: {'reachable' if kube.reachable else 'UNREACHABLE'}, {kube.nodes} nodes, "
                 f"last sync {_when(kube.last_sync_time, now)}, {kube.relists} re-lists, {kube.api_errors} errors")
    lines += ["", peers_table(snapshot), ""]
    if snapshot.bfd:
        process = snapshot.bfd_process
        lines.append(f"BFD process: {'pid ' + str(process.pid) if process.running else 'NOT RUNNING'}, "
                     f"{process.restarts} restarts")
        lines += [bfd_table(snapshot), ""]
    lines.append("Announced: " + (", ".join(snapshot.announced) or "nothing"))
    if snapshot.services.enabled:
        lines += services_lines(snapshot)
    if snapshot.load_balancer.enabled:
        lines += allocator_lines(snapshot)
    routes = snapshot.routes
    total = sum(routes.installed.values())
    families = ", ".join(f"{f.replace('ip', 'IP')} {n}" for f, n in sorted(routes.installed.items()))
    line = f"Installed routes: {total} ({families})" if families else f"Installed routes: {total}"
    if routes.stale:
        line += f", {routes.stale} kept from before a restart"
    line += (f"; last sync {_when(routes.last_sync_time, now)} took {routes.last_duration_s * 1000:.1f} ms, "
             f"{routes.last_sync_errors} errors")
    lines.append(line)
    if snapshot.ipam:
        lines.append("IPAM: " + ", ".join(f"{p.pod_cidr} {p.in_use}/{p.capacity} in use" for p in snapshot.ipam))
    lines.append("")
    if snapshot.last_errors:
        lines.append("Last errors (oldest first):")
        lines += [f"  {e}" for e in snapshot.last_errors]
    else:
        lines.append("Last errors: none")
    return "\n".join(lines) + "\n"


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
