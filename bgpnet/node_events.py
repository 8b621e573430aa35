"""Which Kubernetes Events the agent records on its own Node, and when (pure: decisions only).

`kubectl describe node` shows what happened to a node's BGP sessions next to everything else about it, the way
kubelet's and Calico's events do. The agent records: a session coming up or going down, a config error, a
route refused by the import policy. An agent must never flood the API server, so this follows what client-go's
`EventCorrelator` does for every Kubernetes component:
- **deduplication**: the same (type, reason, message) again updates the existing Event — `count` + 1 and
  `lastTimestamp` — instead of creating another (`kubectl` shows "x5 over 10m");
- **spam filter**: a token bucket per Node (burst 25, one token back every 5 minutes); what finds it empty is
  dropped and counted, never queued.
The writer (`bgpnet.kube.events`) turns each `Write` into a create or a patch.
"""

from __future__ import annotations

from dataclasses import dataclass

NORMAL, WARNING = "Normal", "Warning"
BURST = 25
REFILL_S = 300.0
MESSAGE_LIMIT = 1024  # the API server refuses longer Event messages


@dataclass(frozen=True)
class NodeEvent:
    type: str       # Normal or Warning
    reason: str     # CamelCase, e.g. BGPSessionUp
    message: str


@dataclass(frozen=True)
class Write:
    """Create a new Event (`count` 1), or update the earlier one with the same key (`name` given)."""

    event: NodeEvent
    count: int
    first_seen: float
    last_seen: float
    name: str | None = None  # the Event object to update; None: create one


class EventBook:
    """What has been recorded on this Node: one entry per (type, reason, message), and the spam bucket."""

    def __init__(self, now: float) -> None:
        self._seen: dict[NodeEvent, Write] = {}
        self._tokens = float(BURST)
        self._refilled_at = now
        self.dropped = 0

    def record(self, event: NodeEvent, now: float) -> Write | None:
        """The write to make for `event` now, or None when the spam filter drops it."""
        event = NodeEvent(event.type, event.reason, event.message[:MESSAGE_LIMIT])
        self._tokens = min(float(BURST), self._tokens + (now - self._refilled_at) / REFILL_S)
        self._refilled_at = now
        if self._tokens < 1:
            self.dropped += 1
            return None
        self._tokens -= 1
        earlier = self._seen.get(event)
        write = (Write(event, 1, now, now) if earlier is None
                 else Write(event, earlier.count + 1, earlier.first_seen, now, earlier.name))
        self._seen[event] = write
        return write

    def created(self, write: Write, name: str) -> None:
        """The writer created `write`'s Event as `name`: later repeats update that object."""
        current = self._seen.get(write.event)
        if current is not None and current.name is None:
            self._seen[write.event] = Write(current.event, current.count, current.first_seen, current.last_seen,
                                            name)

    def forget(self, write: Write) -> None:
        """The Event is gone (expired by the API server's TTL, or the update failed): create it anew next time."""
        self._seen.pop(write.event, None)


def session_up(peer: str, asn: int) -> NodeEvent:
    return NodeEvent(NORMAL, "BGPSessionUp", f"BGP session with {peer} (AS {asn}) is Established")


def session_down(peer: str, asn: int, reason: str) -> NodeEvent:
    return NodeEvent(WARNING, "BGPSessionDown", f"BGP session with {peer} (AS {asn}) went down: {reason}")


BFD_DIAGNOSTICS = {1: "control detection time expired", 3: "neighbor signaled session down",
                   7: "administratively down"}


def bfd_down(peer: str, diag: int) -> NodeEvent:
    why = BFD_DIAGNOSTICS.get(diag, f"diagnostic {diag}")
    return NodeEvent(WARNING, "BFDSessionDown",
                     f"BFD session with {peer} went down ({why}): its routes were removed and its BGP session "
                     "torn down")


def bfd_up(peer: str) -> NodeEvent:
    return NodeEvent(NORMAL, "BFDSessionUp", f"BFD session with {peer} is Up again: BGP session restored")


def route_refused(peer: str, reason: str) -> NodeEvent:
    """No prefix in the message: a peer sending 50k refused routes makes one Event whose count grows, and
    `bgpnet status` lists the refusals by reason."""
    return NodeEvent(WARNING, "BGPRouteRefused", f"routes from {peer} refused by the import policy: {reason}")


def config_error(error: str) -> NodeEvent:
    return NodeEvent(WARNING, "BGPConfigError", f"bgpnet configuration error: {error}")
