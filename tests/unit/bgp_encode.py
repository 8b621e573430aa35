"""A minimal BGP UPDATE/OPEN encoder for tests (RFC 4271, 4760, 6793, 1997, 8092, 4724), written from the RFCs
independently of bgpnet.speaker.wire, and the JSON envelope ExaBGP 4.2 wraps raw messages in."""

from __future__ import annotations

import ipaddress
import json


def prefix_bytes(text: str) -> bytes:
    network = ipaddress.ip_network(text)
    octets = (network.prefixlen + 7) // 8
    return bytes([network.prefixlen]) + network.network_address.packed[:octets]


def attribute(code: int, value: bytes, flags: int = 0x40) -> bytes:
    if len(value) > 255:
        return bytes([flags | 0x10, code]) + len(value).to_bytes(2, "big") + value
    return bytes([flags, code, len(value)]) + value


def as_path(segments: list[tuple[int, list[int]]], width: int = 4) -> bytes:
    """segments: (type, ASNs) with type 1 AS_SET, 2 AS_SEQUENCE, 3/4 confederation."""
    return b"".join(bytes([kind, len(asns)]) + b"".join(a.to_bytes(width, "big") for a in asns)
                    for kind, asns in segments)


def update(*, withdrawn: list[str] = (), nlri: list[str] = (), next_hop: str | None = None,
           path: list[tuple[int, list[int]]] | None = None, asn_width: int = 4, as4_path=None,
           communities: list[tuple[int, int]] = (), large: list[tuple[int, int, int]] = (),
           mp_reach: tuple[str, list[str]] | None = None, mp_unreach: list[str] | None = None,
           mp_family: tuple[int, int] = (2, 1), extra: bytes = b"") -> bytes:
    attrs = attribute(1, b"\x00")  # ORIGIN IGP
    if path is not None:
        attrs += attribute(2, as_path(path, asn_width))
    if as4_path is not None:
        attrs += attribute(17, as_path(as4_path, 4), 0xC0)
    if next_hop is not None:
        attrs += attribute(3, ipaddress.ip_address(next_hop).packed)
    if communities:
        attrs += attribute(8, b"".join(h.to_bytes(2, "big") + lo.to_bytes(2, "big") for h, lo in communities), 0xC0)
    if large:
        attrs += attribute(32, b"".join(b"".join(x.to_bytes(4, "big") for x in t) for t in large), 0xC0)
    if mp_reach is not None:
        hops, prefixes = mp_reach
        hop = b"".join(ipaddress.ip_address(h).packed for h in hops.split(","))
        value = mp_family[0].to_bytes(2, "big") + bytes([mp_family[1], len(hop)]) + hop + b"\x00"
        attrs += attribute(14, value + b"".join(prefix_bytes(p) for p in prefixes), 0x80)
    if mp_unreach is not None:
        value = mp_family[0].to_bytes(2, "big") + bytes([mp_family[1]])
        attrs += attribute(15, value + b"".join(prefix_bytes(p) for p in mp_unreach), 0x80)
    attrs += extra
    withdrawn_bytes = b"".join(prefix_bytes(p) for p in withdrawn)
    return (len(withdrawn_bytes).to_bytes(2, "big") + withdrawn_bytes + len(attrs).to_bytes(2, "big") + attrs
            + b"".join(prefix_bytes(p) for p in nlri))


def open_body(asn: int, router_id: str, capabilities: bytes = b"", hold: int = 90) -> bytes:
    params = bytes([2, len(capabilities)]) + capabilities if capabilities else b""
    return (bytes([4]) + (asn if asn <= 65535 else 23456).to_bytes(2, "big") + hold.to_bytes(2, "big")
            + ipaddress.ip_address(router_id).packed + bytes([len(params)]) + params)


def graceful_restart_capability(restart_time: int, flags: int = 0,
                                families: tuple[tuple[int, int, int], ...] = ()) -> bytes:
    """RFC 4724 §3; `families` as (AFI, SAFI, flags for address family), 0x80 being Forwarding State."""
    value = ((flags << 12) | restart_time).to_bytes(2, "big") + b"".join(
        afi.to_bytes(2, "big") + bytes([safi, family_flags]) for afi, safi, family_flags in families)
    return bytes([64, len(value)]) + value


def packet_line(kind: str, peer: str, body: bytes, *, asn4: bool = True, add_path: list[str] = (),
                direction: str = "receive") -> str:
    """One line as ExaBGP 4.2.25 writes a raw message (`receive { packets; }` with `negotiated;`)."""
    category = {"open": 1, "update": 2}[kind]
    header = "0x" + (b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes([category])).hex().upper()
    message = {"exabgp": "4.0.1", "time": 0.0, "type": kind,
               "neighbor": {"address": {"local": "10.0.0.1", "peer": peer},
                            "asn": {"local": 64512, "peer": 65000}, "direction": direction,
                            "message": {"category": category, "header": header,
                                        "body": "0x" + body.hex().upper()},
                            "negotiated": {"message_size": 4096, "hold_time": 9, "asn4": asn4,
                                           "add_path": {"send": [], "receive": list(add_path)}}}}
    return json.dumps(message)
