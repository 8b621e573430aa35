"""What the speaker tells the agent, as plain immutable values.

The speaker turns ExaBGP's JSON lines into these events and hands them to one callback, in the order ExaBGP
sent them. ExaBGP itself is stateless towards us after a restart (it neither replays received routes nor
withdraws a dropped peer's routes), so the events say exactly when learned state becomes void: `PeerDown`
(that peer's routes are stale, the agent decides what to do with them) and `SpeakerRestarted` (everything
learned before is void until re-learned).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpnet.model import (  # noqa: F401 - the RFC 7606 actions are part of this module's vocabulary
    ATTRIBUTE_DISCARD,
    MALFORMED_ACTIONS,
    SESSION_RESET,
    TREAT_AS_WITHDRAW,
    IPAddress,
    IPNetwork,
    LearnedRoute,
)


@dataclass(frozen=True)
class PeerUp:
    """The BGP session with `peer` reached Established."""

    peer: IPAddress


@dataclass(frozen=True)
class PeerDown:
    """The session left Established (ExaBGP "down"); ExaBGP does NOT withdraw the routes learned from it.

    `local` is True when the session ended because our own ExaBGP went away (the peer may be perfectly
    healthy): its routes are then worth keeping as stale until the restarted ExaBGP learns them again.
    """

    peer: IPAddress
    reason: str
    local: bool = False


@dataclass(frozen=True)
class PeerOpen:
    """The OPEN `peer` sent: `restart_time` is the Restart Time of its graceful restart capability (RFC 4724),
    None when it did not advertise one (then its routes go as soon as its session drops)."""

    peer: IPAddress
    restart_time: int | None


@dataclass(frozen=True)
class Malformed:
    """What was wrong with a received UPDATE: the RFC 7606 `action` taken, the `reason`, and (at most 64 of)
    the offending octets, for the log."""

    action: str
    reason: str
    offending: bytes = b""


@dataclass(frozen=True)
class RoutesReceived:
    """One UPDATE from `peer`: the prefixes it announced (with attributes) and the prefixes it withdrew.
    `malformed` says what RFC 7606 made of a malformed one: with treat-as-withdraw every prefix it carried is
    in `withdrawn` and nothing is announced; with attribute-discard the routes are as decoded."""

    peer: IPAddress
    announced: tuple[LearnedRoute, ...]
    withdrawn: tuple[IPNetwork, ...]
    malformed: Malformed | None = None


@dataclass(frozen=True)
class SessionReset:
    """An UPDATE from `peer` whose prefixes cannot be located (RFC 7606 session reset): everything learned
    from the peer is void, and the session is torn down."""

    peer: IPAddress
    malformed: Malformed


@dataclass(frozen=True)
class EndOfRib:
    """`peer` finished sending its initial table for `family` (e.g. "ipv4 unicast").

    A multiprotocol session sends one per family, IPv6 routes typically after the IPv4 End-of-RIB; the agent
    takes an End-of-RIB as "this peer's table is complete" (graceful restart hold, startup stale sweep), so the
    speaker passes one on only after the last family bgpnet carries that the session negotiated
    (`negotiated`, ExaBGP's list for the session; empty when unknown: passed on at once)."""

    peer: IPAddress
    family: str
    negotiated: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class SpeakerRestarted:
    """ExaBGP was (re)started: every route learned before is void until it is learned again."""


@dataclass(frozen=True)
class BadMessage:
    """A line from ExaBGP that could not be understood: logged and counted, never fatal."""

    line: str
    error: str


SpeakerEvent = (PeerUp | PeerDown | PeerOpen | RoutesReceived | SessionReset | EndOfRib | SpeakerRestarted
                | BadMessage)
