"""Turn one line from ExaBGP's process API into typed values (pure, no I/O).

ExaBGP 4.2 writes one JSON object per line (its JSON schema reports itself as "4.0.1"), interleaved with the
plain-text `done`/`error` acknowledgements of our commands. This module is on the hot path of a full-table
transfer: each line is decoded with one `json.loads`, prefixes of one UPDATE are built in a tight loop that
shares the attributes, and nothing is logged per prefix. Anything unexpected becomes a `BadMessage` rather
than an exception, so one odd line can never stop the reader.

Session state messages are returned as raw `StateChange`s: whether a "down" is a `PeerDown` depends on the
session having been established, which only the session table knows.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address

from bgpnet.model import IPAddress, IPNetwork, LearnedRoute
from bgpnet.speaker.events import BadMessage, EndOfRib, RoutesReceived

_MAX_LINE_IN_EVENT = 500
_CACHE_LIMIT = 1 << 18
_v4_cache: dict[str, IPv4Network] = {}


def _v4_network(text: str) -> IPv4Network:
    """`IPv4Network(text)` at half the cost (the string parser dominates the per-prefix budget), strict like
    it (host bits set → ValueError), and cached: a re-learned table reuses the objects of the first one."""
    network = _v4_cache.get(text)
    if network is None:
        address, slash, length = text.partition("/")
        if not slash or not length.isdigit():
            raise ValueError(f"invalid IPv4 prefix {text!r}")
        try:
            packed = socket.inet_pton(socket.AF_INET, address)
        except OSError:
            raise ValueError(f"invalid IPv4 prefix {text!r}") from None
        network = IPv4Network((int.from_bytes(packed, "big"), int(length)))
        if len(_v4_cache) >= _CACHE_LIMIT:
            _v4_cache.clear()
        _v4_cache[text] = network
    return network


_NETWORK_OF_FAMILY = {"ipv4 unicast": _v4_network, "ipv6 unicast": IPv6Network}


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


Parsed = StateChange | RoutesReceived | EndOfRib | Ack | RelayHello | Ignored | BadMessage

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
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return _bad(line, f"{type(exc).__name__}: {exc}")


def _bad(line: bytes | str, error: str) -> BadMessage:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    return BadMessage(line=text[:_MAX_LINE_IN_EVENT], error=error)


def _parse_message(message: dict, line: bytes | str) -> Parsed:
    kind = message.get("type")
    if kind == "update":
        return _parse_update(message, line)
    if kind == "state":
        neighbor = message["neighbor"]
        return StateChange(ip_address(neighbor["address"]["peer"]), str(neighbor["state"]),
                           str(neighbor.get("reason", "")))
    if "relay" in message:
        return RelayHello(int(message["relay"]["exabgp-pid"]))
    if kind in ("notification", "signal", "negotiated", "open", "keepalive", "refresh", "operational"):
        return Ignored(kind)
    return _bad(line, f"unknown message type {kind!r}")


def _parse_update(message: dict, line: bytes | str) -> Parsed:
    neighbor = message["neighbor"]
    peer = ip_address(neighbor["address"]["peer"])
    body = neighbor["message"]
    eor = body.get("eor")
    if eor is not None:
        return EndOfRib(peer, f"{eor['afi']} {eor['safi']}")
    update = body["update"]
    announced: list[LearnedRoute] = []
    withdrawn: list[IPNetwork] = []

    announce = update.get("announce")
    if announce:
        attribute = update.get("attribute") or {}
        as_path = tuple(int(asn) for asn in attribute.get("as-path", ()))
        as_set = attribute.get("as-set")
        if as_set:
            # AS_SET members still count for loop detection; order inside a set has no meaning.
            as_path += tuple(int(asn) for asn in as_set)
        communities = _communities(attribute)
        for family, by_next_hop in announce.items():
            network = _NETWORK_OF_FAMILY.get(family)
            if network is None:
                continue
            if len(by_next_hop) > 1 and family == "ipv6 unicast":
                # A directly connected IPv6 peer (BIRD, FRR) sends a global and a link-local next hop
                # (RFC 2545 §3); ExaBGP 4.2 reports each prefix once per next hop. The link-local one cannot
                # be installed without an interface, so the global one is kept when there is one.
                globals_only = {k: v for k, v in by_next_hop.items() if not ip_address(k).is_link_local}
                by_next_hop = globals_only or by_next_hop
            for next_hop_text, nlris in by_next_hop.items():
                next_hop = ip_address(next_hop_text)
                # The tight loop: one network parse and one tuple-backed dataclass per prefix.
                announced.extend([LearnedRoute(peer, network(entry["nlri"]), next_hop, as_path, communities)
                                  for entry in nlris])

    withdraw = update.get("withdraw")
    if withdraw:
        for family, nlris in withdraw.items():
            network = _NETWORK_OF_FAMILY.get(family)
            if network is None:
                continue
            withdrawn.extend([network(entry["nlri"]) for entry in nlris])

    if not announce and not withdraw:
        return _bad(line, "update without announce or withdraw")
    return RoutesReceived(peer, tuple(announced), tuple(withdrawn))


def _communities(attribute: dict) -> tuple[str, ...]:
    standard = attribute.get("community")
    large = attribute.get("large-community")
    if not standard and not large:
        return ()
    out = [f"{high}:{low}" for high, low in standard or ()]
    out.extend(f"{a}:{b}:{c}" for a, b, c in large or ())
    return tuple(out)
