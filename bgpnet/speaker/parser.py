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
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address

from bgpnet.model import IPAddress, IPNetwork, LearnedRoute
from bgpnet.speaker.events import BadMessage, EndOfRib, PeerOpen, RoutesReceived

_MAX_LINE_IN_EVENT = 500
_CACHE_LIMIT = 1 << 18


class _HashedIPv4Network(IPv4Network):
    """An `IPv4Network` whose hash is computed once. The stdlib recomputes it in Python on every dict or set
    operation (`hash(int(address) ^ int(netmask))`), and a learned prefix is a key in several dicts (RIB per
    peer and per prefix, desired routes, the route table's cache): that hash was the top entry of the agent's
    profile during a full-table transfer. Equal to, and hashing like, a plain IPv4Network of the same value."""

    def __init__(self, address: object, strict: bool = True) -> None:
        super().__init__(address, strict)  # type: ignore[arg-type]
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Network({str(self)!r})"

    def __reduce__(self) -> tuple:
        return IPv4Network, (str(self),)


class _HashedIPv4Address(IPv4Address):
    """An `IPv4Address` whose hash is computed once (the stdlib's is `hash(hex(int(self)))`, in Python): peers
    and next hops are dict keys once per prefix in the RIB. Equal to, and hashing like, a plain IPv4Address."""

    __slots__ = ("_hash",)

    def __init__(self, address: object) -> None:
        super().__init__(address)  # type: ignore[arg-type]
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Address({str(self)!r})"

    def __reduce__(self) -> tuple:
        return IPv4Address, (str(self),)


_v4_cache: dict[str, IPv4Network] = {}
_addresses: dict[str, IPAddress] = {}


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
        network = _HashedIPv4Network((int.from_bytes(packed, "big"), int(length)))
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


Parsed = StateChange | RoutesReceived | EndOfRib | PeerOpen | Ack | RelayHello | Ignored | BadMessage

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
    if kind == "open":
        return _parse_open(message)
    if "relay" in message:
        return RelayHello(int(message["relay"]["exabgp-pid"]))
    if kind in ("notification", "signal", "negotiated", "keepalive", "refresh", "operational"):
        return Ignored(kind)
    return _bad(line, f"unknown message type {kind!r}")


def _parse_open(message: dict) -> PeerOpen | Ignored:
    """ExaBGP 4.2's `"type": "open"` (with `receive { open; }`): only the peer's OPEN matters, and of it only
    the graceful restart capability, `{"name": "graceful restart", "time": 30, ...}` under its code."""
    neighbor = message["neighbor"]
    if neighbor.get("direction") != "receive":
        return Ignored("open")
    peer = ip_address(neighbor["address"]["peer"])
    for capability in (neighbor["open"].get("capabilities") or {}).values():
        if isinstance(capability, dict) and capability.get("name") == "graceful restart":
            return PeerOpen(peer, int(capability["time"]))
    return PeerOpen(peer, None)


def _parse_update(message: dict, line: bytes | str) -> Parsed:
    neighbor = message["neighbor"]
    peer = _address(neighbor["address"]["peer"])
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
                next_hop = _address(next_hop_text)
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


def _address(text: str) -> IPAddress:
    """The same address object for the same peer or next hop in every UPDATE (IPv4 ones with a cached hash):
    the routes of a full table then share one gateway object, which keeps later per-gateway work (next-hop
    resolution) to one lookup and every dict operation keyed by it cheap."""
    address = _addresses.get(text)
    if address is None:
        if len(_addresses) >= 4096:
            _addresses.clear()
        address = ip_address(text)
        if address.version == 4:
            address = _HashedIPv4Address(int(address))
        _addresses[text] = address
    return address


def _communities(attribute: dict) -> tuple[str, ...]:
    standard = attribute.get("community")
    large = attribute.get("large-community")
    if not standard and not large:
        return ()
    out = [f"{high}:{low}" for high, low in standard or ()]
    out.extend(f"{a}:{b}:{c}" for a, b, c in large or ())
    return tuple(out)
