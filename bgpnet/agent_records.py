"""Plain records of what the agent did, kept for `bgpnet status` and the metrics layer (no logic, no I/O)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bgpnet.model import IPAddress
from bgpnet.snapshot import DurationHistogram


@dataclass
class AgentCounters:
    """Plain counters the metrics layer and `bgpnet status` read."""

    bad_speaker_messages: int = 0
    route_errors: int = 0
    reconciles: int = 0
    speaker_restarts: int = 0
    reconcile_failures: int = 0
    last_errors: list[str] = field(default_factory=list)
    # Totals that survive a RIB reset (an ExaBGP restart starts a fresh RIB): (peer, reason) and
    # (peer, "established"/"down").
    rejected: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)
    session_changes: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)
    # Malformed UPDATEs by (peer, RFC 7606 action).
    malformed: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)
    # BFD state transitions by (peer, state entered).
    bfd_changes: Counter[tuple[IPAddress, str]] = field(default_factory=Counter)

    def error(self, message: str) -> None:
        self.last_errors = [*self.last_errors[-9:], message]


@dataclass
class RouteSyncRecord:
    """What the reconcile loop observed of its route applies (read by `snapshot()` under the agent lock)."""

    durations: dict[str, DurationHistogram] = field(
        default_factory=lambda: {"apply": DurationHistogram(), "resync": DurationHistogram()})
    errors: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    installed: dict[str, int] = field(default_factory=lambda: {"ipv4": 0, "ipv6": 0})
    last_time: float | None = None
    last_errors: int = 0
    last_duration_s: float = 0.0
    programmed: bool = False
