"""Decode the OPEN a peer sent, as ExaBGP hands it over raw (pure, no I/O).

Only what the agent needs: the graceful restart capability (RFC 4724 §3), with RFC 9072 extended optional
parameters. Decoding is total: any byte string gives either an `OpenDecoded` or a `MalformedOpen`, never an
exception (the reader thread that calls it must survive whatever a peer sends; ExaBGP answers a malformed
OPEN with a NOTIFICATION itself, bgpnet only has to believe nothing from it).
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpnet.speaker.events import GracefulRestart

_GRACEFUL_RESTART = 64
_CAPABILITIES = 2
_OPEN_FIXED = 10  # version 1, my AS 2, hold time 2, BGP identifier 4, optional parameters length 1

# RFC 4724 §3: the first 2 octets are Restart Flags (4 bits) and Restart Time (12 bits); then 4 octets per
# address family: AFI (2), SAFI (1), Flags for Address Family (1), whose top bit is Forwarding State.
_RESTART_STATE = 0x8000
_RESTART_TIME = 0x0FFF
_FORWARDING_STATE = 0x80
_FAMILY_NAMES = {(1, 1): "ipv4 unicast", (2, 1): "ipv6 unicast"}  # ExaBGP's names, as in EndOfRib.family


@dataclass(frozen=True)
class OpenDecoded:
    """A well-formed OPEN: its graceful restart capability, None when it carries none."""

    graceful_restart: GracefulRestart | None


@dataclass(frozen=True)
class MalformedOpen:
    """An OPEN that could not be decoded, and why."""

    reason: str


OpenResult = OpenDecoded | MalformedOpen


class _Malformed(Exception):
    """Internal: raised by the checks below, turned into `MalformedOpen` by `decode_open` (never escapes)."""


def decode_open(body: bytes) -> OpenResult:
    """An OPEN body (without the 19-octet header) → its graceful restart capability, or why it is malformed."""
    try:
        return OpenDecoded(_graceful_restart(body))
    except _Malformed as exc:
        return MalformedOpen(str(exc))


def _graceful_restart(body: bytes) -> GracefulRestart | None:
    if len(body) < _OPEN_FIXED:
        raise _Malformed(f"OPEN body of {len(body)} octets")
    i, end, extended = _optional_parameters(body)
    found: GracefulRestart | None = None
    while i < end:
        header = 3 if extended else 2
        if i + header > end:
            raise _Malformed("optional parameter header overruns the parameters")
        kind = body[i]
        length = int.from_bytes(body[i + 1:i + header], "big")
        i += header
        stop = i + length
        if stop > end:
            raise _Malformed("optional parameter overruns the parameters")
        if kind == _CAPABILITIES:
            for code, value in _capabilities(body[i:stop]):
                if code == _GRACEFUL_RESTART:
                    # RFC 4724 §3 allows one; a repeated one replaces the earlier, as in most implementations.
                    found = _decode_graceful_restart(value)
        i = stop
    return found


def _optional_parameters(body: bytes) -> tuple[int, int, bool]:
    """Where the optional parameters start and end, and whether they use RFC 9072's 2-octet lengths.

    RFC 9072: Optional Parameters Length 255 followed by a Parameter Type of 255 (non-extended) means the next
    2 octets are the real length and every parameter has a 2-octet length."""
    length = body[9]
    if length == 255 and len(body) > _OPEN_FIXED and body[_OPEN_FIXED] == 255:
        if len(body) < _OPEN_FIXED + 3:
            raise _Malformed("truncated extended optional parameters length")
        start = _OPEN_FIXED + 3
        end = start + int.from_bytes(body[_OPEN_FIXED + 1:_OPEN_FIXED + 3], "big")
        extended = True
    else:
        start, end, extended = _OPEN_FIXED, _OPEN_FIXED + length, False
    if end > len(body):
        raise _Malformed("optional parameters overrun the OPEN")
    if end < len(body):
        raise _Malformed(f"{len(body) - end} octets after the optional parameters")
    return start, end, extended


def _capabilities(parameter: bytes) -> list[tuple[int, bytes]]:
    """The (code, value) pairs of one Capabilities optional parameter (RFC 5492 §4)."""
    found = []
    j = 0
    while j < len(parameter):
        if j + 2 > len(parameter):
            raise _Malformed("capability header overruns its parameter")
        code, size = parameter[j], parameter[j + 1]
        if j + 2 + size > len(parameter):
            raise _Malformed(f"capability {code} overruns its parameter")
        found.append((code, parameter[j + 2:j + 2 + size]))
        j += 2 + size
    return found


def _decode_graceful_restart(value: bytes) -> GracefulRestart:
    if len(value) < 2 or (len(value) - 2) % 4:
        raise _Malformed(f"graceful restart capability of {len(value)} octets")
    flags_time = int.from_bytes(value[:2], "big")
    families: dict[str, bool] = {}
    for k in range(2, len(value), 4):
        afi, safi, flags = int.from_bytes(value[k:k + 2], "big"), value[k + 2], value[k + 3]
        name = _FAMILY_NAMES.get((afi, safi))
        if name is not None:  # other families are not carried by bgpnet's sessions
            families[name] = bool(flags & _FORWARDING_STATE)
    return GracefulRestart(restart_time=flags_time & _RESTART_TIME,
                           restart_state=bool(flags_time & _RESTART_STATE), families=families)
