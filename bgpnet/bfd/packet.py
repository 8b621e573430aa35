"""The BFD Control packet (RFC 5880 §4.1): encoding and the reception checks of §6.8.6 (pure).

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
    |                       My Discriminator                        |
    |                      Your Discriminator                       |
    |                    Desired Min TX Interval                    |
    |                   Required Min RX Interval                    |
    |                 Required Min Echo RX Interval                 |

Intervals are in microseconds. Authentication is not supported: a packet with the A bit is discarded (§6.8.6:
"if the A bit is set and no authentication is in use"), and bgpnet never sets it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 1
LENGTH = 24
_FORMAT = struct.Struct("!BBBBIIIII")

# Session states (§4.1 "Sta")
ADMIN_DOWN, DOWN, INIT, UP = 0, 1, 2, 3
STATE_NAMES = {ADMIN_DOWN: "AdminDown", DOWN: "Down", INIT: "Init", UP: "Up"}

# Diagnostic codes (§4.1 "Diag") bgpnet sends
DIAG_NONE, DIAG_DETECTION_EXPIRED, DIAG_NEIGHBOR_DOWN, DIAG_ADMIN_DOWN = 0, 1, 3, 7

_P, _F, _C, _A, _D, _M = 0x20, 0x10, 0x08, 0x04, 0x02, 0x01


class BadPacket(ValueError):
    """A packet §6.8.6 says to discard; the message says which check failed."""


@dataclass(frozen=True)
class ControlPacket:
    state: int
    my_discriminator: int
    your_discriminator: int
    desired_min_tx_us: int
    required_min_rx_us: int
    detect_mult: int
    diag: int = DIAG_NONE
    poll: bool = False
    final: bool = False
    required_min_echo_rx_us: int = 0  # echo mode is not implemented: always 0 ("does not support echo")

    def encode(self) -> bytes:
        flags = (self.state << 6) | (_P if self.poll else 0) | (_F if self.final else 0)
        return _FORMAT.pack((VERSION << 5) | self.diag, flags, self.detect_mult, LENGTH, self.my_discriminator,
                            self.your_discriminator, self.desired_min_tx_us, self.required_min_rx_us,
                            self.required_min_echo_rx_us)


def decode(data: bytes) -> ControlPacket:
    """The packet, or BadPacket for anything §6.8.6 discards before the state machine sees it."""
    if len(data) < LENGTH:
        raise BadPacket(f"{len(data)} octets, shorter than a BFD Control packet ({LENGTH})")
    vers_diag, flags, mult, length, mine, yours, tx, rx, echo = _FORMAT.unpack_from(data)
    if vers_diag >> 5 != VERSION:
        raise BadPacket(f"version {vers_diag >> 5}")
    if flags & _A:
        raise BadPacket("authentication present, none configured")
    if length < LENGTH or length > len(data):
        raise BadPacket(f"length field {length} with {len(data)} octets received")
    if mult == 0:
        raise BadPacket("detect multiplier 0")
    if flags & _M:
        raise BadPacket("multipoint bit set")
    if mine == 0:
        raise BadPacket("my discriminator 0")
    state = flags >> 6
    if yours == 0 and state not in (DOWN, ADMIN_DOWN):
        raise BadPacket(f"your discriminator 0 in state {STATE_NAMES[state]}")
    if flags & _P and flags & _F:
        raise BadPacket("poll and final both set")
    return ControlPacket(state=state, my_discriminator=mine, your_discriminator=yours, desired_min_tx_us=tx,
                         required_min_rx_us=rx, detect_mult=mult, diag=vers_diag & 0x1F, poll=bool(flags & _P),
                         final=bool(flags & _F), required_min_echo_rx_us=echo)
