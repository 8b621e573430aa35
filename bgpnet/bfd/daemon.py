"""The BFD process: single-hop asynchronous BFD (RFC 5880, 5881) for a set of peers, in its own process.

Why a process of its own: the agent's loop spends hundreds of milliseconds at a time on a full-table transfer,
a resync or a garbage collection, and its threads share one GIL with the speaker's reader. A BFD packet late
by a third of the detection time (100 ms at 300 ms × 3) is a false session down. This process does nothing
but BFD: standard library only, one `select` loop, a few sockets.

Talks to its parent over stdin/stdout, one JSON object per line:
- in:  {"peers": [{"peer": "172.31.0.1", "local": "172.31.0.11", "min_tx_ms": 300, "min_rx_ms": 300,
        "multiplier": 3}, ...]}  — the whole wanted set; sessions are added, re-timed (Poll) or removed;
- out: {"peer": "172.31.0.1", "state": "Up", "old": "Init", "diag": 0, "remote": "Init", "detect_ms": 3000.0,
        "tx_ms": 1000.0}
        on every state change; {"peer": ..., "timers": true, "detect_ms": 900.0, "tx_ms": 300.0} when the
        negotiated detection time or transmit interval changes (a session comes Up at the slow 1 s rate and
        both sides then switch to their configured rates with a Poll sequence); {"ready": true} once the
        sockets are bound.
EOF on stdin ends the process (the agent is gone); so does SIGTERM. Either way every session is first sent
AdminDown (see `shut_down`).

RFC 5881 on the wire: Control packets to UDP port 3784 from a source port in 49152–65535 that stays the same
for the session, IP TTL / hop limit 255 on every packet, and only packets that arrive with 255 are accepted
(§5: a packet from further away cannot be single-hop). A packet is matched to its session by Your
Discriminator, or, while that is 0, by its source address (§6.3).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from bgpnet.bfd.packet import STATE_NAMES, UP, BadPacket, decode
from bgpnet.bfd.session import Change, Session

CONTROL_PORT = 3784
SOURCE_PORTS = range(49152, 65536)
TTL = 255
IP_RECVTTL, IP_TTL_CMSG = 12, 2  # linux/in.h: IP_RECVTTL, and IP_TTL as the cmsg type carrying it
IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 51, 52


@dataclass
class PeerConfig:
    peer: str
    local: str
    min_tx_ms: int = 300
    min_rx_ms: int = 300
    multiplier: int = 3

    @classmethod
    def parse(cls, raw: dict) -> PeerConfig:
        peer = str(ipaddress.ip_address(raw["peer"]))
        local = str(ipaddress.ip_address(raw["local"]))
        config = cls(peer, local, int(raw.get("min_tx_ms", 300)), int(raw.get("min_rx_ms", 300)),
                     int(raw.get("multiplier", 3)))
        if not (1 <= config.min_tx_ms <= 60_000 and 1 <= config.min_rx_ms <= 60_000
                and 1 <= config.multiplier <= 255):
            raise ValueError(f"BFD timers out of range for {peer}")
        return config


@dataclass
class PeerSession:
    config: PeerConfig
    session: Session
    sock: socket.socket
    next_tx: float = 0.0
    timers: tuple[float, float] = (0.0, 0.0)  # (detection time, transmit interval) last reported, ms


def received_ttl(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The TTL / hop limit the kernel reported for a received packet (IP_RECVTTL / IPV6_RECVHOPLIMIT)."""
    for level, kind, data in ancillary:
        if (level, kind) in ((socket.IPPROTO_IP, IP_TTL_CMSG), (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
            return struct.unpack("i", data[:4])[0] if len(data) >= 4 else data[0]
    return None


class BfdDaemon:
    def __init__(self, out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._sessions: dict[str, PeerSession] = {}
        self._by_discriminator: dict[int, PeerSession] = {}
        self._listeners = [self._listener(socket.AF_INET), self._listener(socket.AF_INET6)]

    # --- sockets ------------------------------------------------------------------------------------------
    @staticmethod
    def _listener(family: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            sock.bind(("::", CONTROL_PORT))
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.bind(("0.0.0.0", CONTROL_PORT))
        sock.setblocking(False)
        return sock

    @staticmethod
    def _sender(config: PeerConfig) -> socket.socket:
        """A socket bound to the local address and one source port of the 49152–65535 range (RFC 5881 §4)."""
        family = socket.AF_INET6 if ":" in config.peer else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
        for port in random.sample(SOURCE_PORTS, 64):
            try:
                sock.bind((config.local, port))
                break
            except OSError:
                continue
        else:
            sock.close()
            raise OSError(f"no free BFD source port on {config.local}")
        sock.setblocking(False)
        return sock

    # --- configuration ------------------------------------------------------------------------------------
    def configure(self, peers: list[PeerConfig]) -> None:
        wanted = {p.peer: p for p in peers}
        for address in list(self._sessions):
            if address not in wanted or wanted[address].local != self._sessions[address].config.local:
                self._remove(address)
        now = self._clock()
        for address, config in wanted.items():
            current = self._sessions.get(address)
            if current is None:
                self._add(config, now)
            elif current.config != config:
                current.config = config
                current.session.detect_mult = config.multiplier
                current.session.set_timers(config.min_tx_ms * 1000, config.min_rx_ms * 1000)
                current.next_tx = now  # announce at once (a Poll when Up)

    def _add(self, config: PeerConfig, now: float) -> None:
        discriminator = random.randint(1, 2**32 - 1)
        while discriminator in self._by_discriminator:
            discriminator = random.randint(1, 2**32 - 1)
        session = Session(discriminator, config.min_tx_ms * 1000, config.min_rx_ms * 1000, config.multiplier,
                          now=now)
        entry = PeerSession(config, session, self._sender(config), next_tx=now)
        self._sessions[config.peer] = entry
        self._by_discriminator[discriminator] = entry

    def _remove(self, address: str) -> None:
        entry = self._sessions.pop(address)
        self._by_discriminator.pop(entry.session.local_discriminator, None)
        entry.session.admin(True)
        self._send(entry)  # tell the peer: AdminDown, not a failure (§6.8.16)
        entry.sock.close()

    # --- the loop -----------------------------------------------------------------------------------------
    def run(self, control: int) -> None:
        self._emit({"ready": True})
        buffer = b""
        while True:
            timeout = self._timeout()
            readable, _, _ = select.select([control, *self._listeners], [], [], timeout)
            for fd in readable:
                if fd == control:
                    chunk = os.read(control, 65536)
                    if not chunk:
                        self.shut_down()
                        return
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        self._control(line)
                else:
                    self._receive(fd)
            self._tick()

    def shut_down(self) -> None:
        """The agent stopped (stdin closed) or we were told to terminate: every session goes AdminDown. A peer
        must not take that for a failed path (RFC 5882 §3.2), so a node whose agent restarts keeps its routes
        at the peers under BGP graceful restart instead of losing them when BFD falls silent. The packet is
        sent twice: one loss should not turn a restart into a detected failure."""
        for entry in self._sessions.values():
            entry.session.admin(True)
            for _ in range(2):
                self._send(entry)
            entry.sock.close()
        self._sessions.clear()
        self._by_discriminator.clear()

    def _control(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            self.configure([PeerConfig.parse(p) for p in message["peers"]])
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self._emit({"error": f"bad configuration: {exc}"})

    def _timeout(self) -> float:
        now = self._clock()
        deadlines = [e.next_tx for e in self._sessions.values()]
        deadlines += [d for e in self._sessions.values() if (d := e.session.detection_deadline()) is not None]
        return max(0.0, min(deadlines) - now) if deadlines else 1.0

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                data, ancillary, _, source = sock.recvmsg(128, socket.CMSG_SPACE(4))
            except BlockingIOError:
                return
            if received_ttl(ancillary) != TTL:
                continue  # RFC 5881 §5: not from a directly connected system
            try:
                packet = decode(data)
            except BadPacket:
                continue
            sender = str(ipaddress.ip_address(source[0].split("%")[0]))  # without an IPv6 scope
            entry = (self._by_discriminator.get(packet.your_discriminator) if packet.your_discriminator
                     else self._sessions.get(sender))
            if entry is None or sender != entry.config.peer:
                continue
            change = entry.session.receive(packet, self._clock())
            if change is not None:
                self._changed(entry, change)
            elif entry.session.state == UP and self._timers(entry) != entry.timers:
                entry.timers = self._timers(entry)
                self._emit({"peer": entry.config.peer, "timers": True, "detect_ms": entry.timers[0],
                            "tx_ms": entry.timers[1]})
            if entry.session.wants_immediate_send():
                self._send(entry)

    def _tick(self) -> None:
        now = self._clock()
        for entry in list(self._sessions.values()):
            change = entry.session.expire(now)
            if change is not None:
                self._changed(entry, change)  # sends at once
            if now >= entry.next_tx:
                interval = entry.session.tx_interval_s()
                if interval:  # RFC 5880 §6.8.7: a peer whose RequiredMinRx is 0 wants no periodic packets
                    self._send(entry)
                jitter = random.uniform(0, entry.session.max_jitter_fraction())
                entry.next_tx = now + (interval or 1.0) * (1 - jitter)

    def _send(self, entry: PeerSession) -> None:
        try:
            entry.sock.sendto(entry.session.packet().encode(), (entry.config.peer, CONTROL_PORT))
        except OSError:
            pass  # no route to the peer right now: detection, not this, decides

    @staticmethod
    def _timers(entry: PeerSession) -> tuple[float, float]:
        session = entry.session
        return round(session.detection_time_s() * 1000, 1), round(session.tx_interval_s() * 1000, 1)

    def _changed(self, entry: PeerSession, change: Change) -> None:
        entry.timers = self._timers(entry)
        # `remote`: the state the peer last reported; Down because the peer said AdminDown is not a failure of
        # the path, and the BGP session must not be torn down for it (RFC 5882 §3.2).
        self._emit({"peer": entry.config.peer, "state": STATE_NAMES[change.new], "old": STATE_NAMES[change.old],
                    "diag": change.diag, "remote": STATE_NAMES[entry.session.remote_state],
                    "detect_ms": entry.timers[0], "tx_ms": entry.timers[1]})
        if change.new != change.old:
            entry.next_tx = self._clock()  # tell the peer at once

    def _emit(self, message: dict) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


def main() -> int:
    try:
        daemon = BfdDaemon()
    except OSError as exc:  # e.g. another BFD daemon (FRR's bfdd) holds UDP 3784 on this host
        sys.stdout.write(json.dumps({"error": f"cannot listen on UDP port {CONTROL_PORT}: {exc}"}) + "\n")
        return 1

    def terminate(*_: object) -> None:
        daemon.shut_down()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    # Ctrl-C in a terminal reaches the whole process group: the agent shuts down and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    daemon.run(sys.stdin.fileno())
    return 0
