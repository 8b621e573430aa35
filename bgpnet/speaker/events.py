"""What the speaker tells the agent, as plain immutable values.

The speaker turns ExaBGP's JSON lines into these events and hands them to one callback, in the order ExaBGP
sent them. ExaBGP itself is stateless towards us after a restart (it neither replays received routes nor
withdraws a dropped peer's routes), so the events say exactly when learned state becomes void: `PeerDown`
(that peer's routes are stale, the agent decides what to do with them) and `SpeakerRestarted` (everything
learned before is void until re-learned).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from bgpnet.prefix import Prefix


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
class GracefulRestart:
    """A peer's graceful restart capability (RFC 4724 §3).

    `families` maps each address family the peer listed ("ipv4 unicast", "ipv6 unicast"; others are left out)
    to its Forwarding State bit: whether the peer preserved forwarding for it across its restart. Only listed
    families are retained as stale when the session drops; an empty mapping (FRR's default: it can help a
    restarting peer but preserves nothing itself) means nothing is retained. `restart_state` (the R bit: the
    peer has just restarted) is informational."""

    restart_time: int
    restart_state: bool
    families: Mapping[str, bool]


@dataclass(frozen=True)
class PeerOpen:
    """The OPEN `peer` sent: `graceful_restart` is its graceful restart capability, None when it advertised
    none (then its routes go as soon as its session drops). `malformed` is non-empty when the OPEN could not
    be decoded (why): ExaBGP refuses such a session itself; bgpnet counts it and believes no capability."""

    peer: IPAddress
    graceful_restart: GracefulRestart | None
    malformed: str = ""


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
    withdrawn: tuple[Prefix, ...]
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

    A multiprotocol session sends one per family, IPv6 routes typically after the IPv4 End-of-RIB. Each ends the
    graceful restart hold of its own family; `complete` (set by the speaker) says the peer's whole table is in:
    every family bgpnet carries that the session negotiated (`negotiated`, ExaBGP's list for the session; empty
    when unknown: complete at once) has ended, which is what the start-up stale sweep waits for."""

    peer: IPAddress
    family: str
    negotiated: tuple[str, ...] = field(default=(), compare=False)
    complete: bool = field(default=True, compare=False)


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
