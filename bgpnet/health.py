"""Liveness and readiness verdicts from an agent snapshot (pure).

Liveness (`/healthz`) answers "should the kubelet restart this agent?": when a loop is dead or wedged, or
when every configured BGP peer has been down for longer than `livenessPeersDownAfter` (default 600 s). A loop
is wedged when it has not proved progress for `stall_after_s` (the reconcile loop wakes at least once per
route sync period, so the agent allows three missed periods). The peer rule is for the failure no loop
notices: the speaker runs and answers, but its sessions never come back (seen on a real cluster after a Node
was re-registered: every session stuck in Connect until the agent pod was deleted). A peer restart, a hold
timer expiry and ExaBGP's reconnect backoff (at most 60 s) all end well within the bound, so an agent still
without any session after it is wedged in a way only a restart can clear; if the peers really are gone, the
restart is harmless (routes stay in the kernel across it) and kubelet's backoff spaces the attempts. The
API server being away never fails liveness: sessions do not depend on it.

Readiness (`/readyz`) answers "is this node's pod network programmed?". Ready when all of:
- our own Node has been listed (without it we know neither our pod CIDRs nor our peers);
- the routes are programmed: a route apply finished since then and reported no errors (a route that another
  owner holds, or the kernel refuses, keeps the node unready until it is fixed);
- the start-up sync is over: routes kept from the previous run were re-learned (every peer sent End-of-RIB)
  or the grace period ended;
- when peers are configured, at least one session is Established.
"At least one", not "all": with "all", a single dead node would turn every agent in the cluster unready and
stall DaemonSet rollouts (maxUnavailable: 1), while the node with a real problem is the one that cannot reach
anybody. Individual sessions are visible in `bgpnet_bgp_session_up` and `bgpnet status`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpnet.snapshot import AgentSnapshot


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...] = ()

    def text(self) -> str:
        return "ok\n" if self.ok else "".join(f"{p}\n" for p in self.problems)


def liveness(snapshot: AgentSnapshot) -> Verdict:
    problems = []
    for loop in snapshot.loops:
        if not loop.alive:
            problems.append(f"loop {loop.name} is not running")
        elif loop.age_s is not None and loop.stall_after_s is not None and loop.age_s > loop.stall_after_s:
            problems.append(f"loop {loop.name} made no progress for {loop.age_s:.0f}s "
                            f"(limit {loop.stall_after_s:.0f}s)")
    down_for = all_peers_down_for(snapshot)
    if snapshot.peers_down_limit_s > 0 and down_for is not None and down_for > snapshot.peers_down_limit_s:
        problems.append(f"no BGP session established for {down_for:.0f}s with any of {len(snapshot.peers)} "
                        f"peers (limit {snapshot.peers_down_limit_s:.0f}s, livenessPeersDownAfter)")
    return Verdict(not problems, tuple(problems))


def all_peers_down_for(snapshot: AgentSnapshot) -> float | None:
    """Seconds since the last moment any configured peer was Established (or configured, or the agent
    started); None when a session is up or no peer is configured."""
    if not snapshot.peers or any(p.established for p in snapshot.peers):
        return None
    last = max([snapshot.started_at, *(p.down_since for p in snapshot.peers)])
    return max(0.0, snapshot.taken_at - last)


def readiness(snapshot: AgentSnapshot) -> Verdict:
    problems = []
    if not snapshot.own_node_known:
        problems.append(f"own Node {snapshot.node} not listed yet")
    elif not snapshot.routes_programmed:
        if snapshot.routes.last_sync_errors:
            problems.append(f"routes not programmed: last sync had {snapshot.routes.last_sync_errors} errors")
        else:
            problems.append("routes not programmed yet")
    if snapshot.startup_sync_pending:
        problems.append("start-up sync pending: waiting for peers to re-send their routes")
    if snapshot.peers and not any(p.established for p in snapshot.peers):
        problems.append(f"no BGP session established (0 of {len(snapshot.peers)})")
    return Verdict(not problems, tuple(problems))
