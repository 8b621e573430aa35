"""Turn one line from ExaBGP's process API into typed values (pure, no I/O).

ExaBGP 4.2 writes one JSON object per line (its JSON schema reports itself as "4.0.1"), interleaved with the
plain-text `done`/`error` acknowledgements of our commands. Received UPDATEs and OPENs arrive raw (the wire
message in hex inside the JSON envelope, see exabgp_config) and are decoded by `wire`; session state changes
arrive as ExaBGP's JSON. Anything unexpected becomes a `BadMessage` rather than an exception, so one odd line
can never stop the reader.

Session state messages are returned as raw `StateChange`s: whether a "down" is a `PeerDown` depends on the
session having been established, which only the session table knows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import ip_address

from bgpnet.model import IPAddress
from bgpnet.speaker.events import (
    SESSION_RESET,
    BadMessage,
    EndOfRib,
    Malformed,
    PeerOpen,
    RoutesReceived,
    SessionReset,
)
from bgpnet.speaker.open_message import MalformedOpen, decode_open
from bgpnet.speaker.wire import decode_update

_MAX_LINE_IN_EVENT = 500


@dataclass(frozen=True)
class StateChange:
    """ExaBGP's `"type": "state"` message: "connected", "up" or "down" (with a reason)."""

    peer: IPAddress
    state: str
    reason: str = ""


@dataclass(frozen=True)
class Ack:
    """ExaBGP's answer to one command we wrote: `done` (ok) or `error`."""

    ok: bool


@dataclass(frozen=True)
class RelayHello:
    """First line of every relay connection: which ExaBGP process it serves."""

    exabgp_pid: int


@dataclass(frozen=True)
class Ignored:
    """A well-formed message bgpnet has no use for (e.g. ExaBGP's shutdown notification)."""

    kind: str


Parsed = (StateChange | RoutesReceived | SessionReset | EndOfRib | PeerOpen | Ack | RelayHello | Ignored
          | BadMessage)

_DONE = Ack(ok=True)
_ERROR = Ack(ok=False)


def parse_line(raw: bytes | str) -> Parsed:
    """One line (with or without its newline) → one parsed value; never raises."""
    line = raw.strip()
    if line in (b"done", "done"):
        return _DONE
    if line in (b"error", "error"):
        return _ERROR
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return _bad(line, f"not JSON: {exc}")
    if not isinstance(message, dict):
        return _bad(line, "not a JSON object")
    try:
        return _parse_message(message, line)
    except Exception as exc:
        return _bad(line, f"{type(exc).__name__}: {exc}")


def _bad(line: bytes | str, error: str) -> BadMessage:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return BadMessage(line=text[:_MAX_LINE_IN_EVENT], error=error)


def _parse_message(message: dict, line: bytes | str) -> Parsed:
    kind = message.get("type")
    if kind in ("update", "open"):
        return _parse_packet(message, kind)
    if kind == "state":
        neighbor = message["neighbor"]
        return StateChange(ip_address(neighbor["address"]["peer"]), str(neighbor["state"]),
                           str(neighbor.get("reason", "")))
    if "relay" in message:
        return RelayHello(int(message["relay"]["exabgp-pid"]))
    if kind in ("notification", "signal", "negotiated", "keepalive", "refresh", "operational"):
        return Ignored(kind)
    return _bad(line, f"unknown message type {kind!r}")


def _parse_packet(message: dict, kind: str) -> Parsed:
    """A raw message (`receive { packets; }`): `"message": {"category": 2, "header": "0x…", "body": "0x…"}`
    beside `"negotiated"`. Only received UPDATEs and OPENs are asked for; their bodies are decoded by `wire`."""
    neighbor = message["neighbor"]
    if neighbor.get("direction") != "receive":
        return Ignored(kind)
    peer = ip_address(neighbor["address"]["peer"])
    text = neighbor["message"]["body"]
    body = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if kind == "open":
        decoded = decode_open(body)
        if isinstance(decoded, MalformedOpen):
            return PeerOpen(peer, None, malformed=decoded.reason)
        return PeerOpen(peer, decoded.graceful_restart)
    negotiated = neighbor["negotiated"]
    if negotiated["add_path"]["receive"]:
        # Path identifiers would be read as prefixes: nothing in the message can be located.
        return SessionReset(peer, Malformed(SESSION_RESET, "ADD-PATH negotiated, which bgpnet never advertises"))
    families = negotiated.get("families")
    families = tuple(str(f) for f in families) if isinstance(families, list) else None
    try:
        decoded = decode_update(peer, body, negotiated["asn4"] is True, families,
                                extended_next_hop=bool(negotiated.get("nexthop")))
    except Exception as exc:
        return SessionReset(peer, Malformed(SESSION_RESET, f"undecodable UPDATE ({type(exc).__name__}: {exc})",
                                            body[:64]))
    if isinstance(decoded, EndOfRib):
        return EndOfRib(peer, decoded.family, families or ())
    return decoded
