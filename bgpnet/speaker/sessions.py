"""Per-peer session state as seen through ExaBGP's state messages (pure bookkeeping, no I/O).

ExaBGP reports "connected" (TCP up), "up" (Established) and "down" for every connection attempt, including
the losing side of a connection collision, which goes connected → down without ever being up. Only a
session that was Established can go "down" in the BGP sense, so this table is what turns raw state
messages into `PeerUp`/`PeerDown` events.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from bgpnet.model import BgpPeer, IPAddress
from bgpnet.speaker.events import EndOfRib, PeerDown, PeerUp, RoutesReceived
from bgpnet.speaker.parser import StateChange

IDLE = "idle"
CONNECTED = "connected"
ESTABLISHED = "established"
DOWN = "down"
# The families whose routes bgpnet installs, as ExaBGP names them in its negotiated block.
CARRIED_FAMILIES = frozenset({"ipv4 unicast", "ipv6 unicast"})


@dataclass(frozen=True)
class SessionState:
    """One configured peer: `state` is idle/connected/established/down, `since` is when (time.time())
    it entered that state; `down_since` is when it last stopped being Established (or was configured), which
    connection attempts that fail before OPEN (Connect, Active, Idle again) do not move; counters count since
    the speaker was created."""

    state: str = IDLE
    since: float = 0.0
    down_since: float = 0.0
    established_count: int = 0
    updates_received: int = 0
    prefixes_received: int = 0
    withdrawals_received: int = 0
    last_down_reason: str = ""


class SessionTable:
    """The state of every configured peer; callers serialise access (the speaker holds a lock)."""

    def __init__(self) -> None:
        self._states: dict[IPAddress, SessionState] = {}
        # Families whose End-of-RIB each peer sent in its current session.
        self._ended: dict[IPAddress, set[str]] = {}

    def configure(self, peers: Collection[BgpPeer], now: float) -> None:
        """Track exactly these peers: new ones start idle, removed ones are forgotten."""
        wanted = {p.address for p in peers}
        self._states = {ip: self._states.get(ip) or SessionState(since=now, down_since=now) for ip in wanted}
        self._ended = {ip: ended for ip, ended in self._ended.items() if ip in wanted}

    def state_change(self, change: StateChange, now: float) -> PeerUp | PeerDown | None:
        """Record a state message; return the event it means for the agent, if any."""
        current = self._states.get(change.peer)
        if current is None:
            return None
        if change.state == "up":
            self._ended.pop(change.peer, None)  # a new session: its table starts over
            self._states[change.peer] = replace(current, state=ESTABLISHED, since=now,
                                                established_count=current.established_count + 1)
            return PeerUp(change.peer)
        if change.state == "connected":
            if current.state != ESTABLISHED:
                self._states[change.peer] = replace(current, state=CONNECTED, since=now)
            return None
        if change.state == "down":
            was_up = current.state == ESTABLISHED
            self._states[change.peer] = replace(current, state=DOWN, since=now, last_down_reason=change.reason,
                                                down_since=now if was_up else current.down_since)
            return PeerDown(change.peer, change.reason) if was_up else None
        return None

    def end_of_rib(self, event: EndOfRib) -> bool:
        """Record one family's End-of-RIB; True when the peer's table is now complete: every family bgpnet
        carries that the session negotiated has ended (at once when the negotiated families are unknown)."""
        wanted = CARRIED_FAMILIES.intersection(event.negotiated)
        if not wanted or event.peer not in self._states:
            return True
        ended = self._ended.setdefault(event.peer, set())
        ended.add(event.family)
        return event.family in wanted and wanted <= ended

    def routes(self, event: RoutesReceived) -> None:
        current = self._states.get(event.peer)
        if current is not None:
            self._states[event.peer] = replace(
                current, updates_received=current.updates_received + 1,
                prefixes_received=current.prefixes_received + len(event.announced),
                withdrawals_received=current.withdrawals_received + len(event.withdrawn))

    def all_down(self, reason: str, now: float) -> list[PeerDown]:
        """ExaBGP went away: every session is gone; report the ones that were Established."""
        events = []
        for ip, current in self._states.items():
            if current.state == ESTABLISHED:
                events.append(PeerDown(ip, reason, local=True))
            if current.state != IDLE:
                self._states[ip] = replace(current, state=DOWN, since=now, last_down_reason=reason,
                                           down_since=now if current.state == ESTABLISHED else current.down_since)
        return events

    def established(self) -> list[IPAddress]:
        return [ip for ip, s in self._states.items() if s.state == ESTABLISHED]

    def snapshot(self) -> Mapping[IPAddress, SessionState]:
        return dict(self._states)
