"""The agent's side of the BFD process: start `python -m bgpnet.bfd` (bgpnet.bfd.daemon), tell it the wanted
sessions, read its state changes, and start it again if it dies (the only place that spawns or signals it).

The process inherits the agent's network namespace and is stopped by closing its stdin (it exits on EOF); an
agent killed with SIGKILL closes that pipe too, so the process never outlives it for long. While it is
restarted, every session is Down on both sides: peers that run BFD declare this node down after their
detection time, as they would for any restart of a BFD speaker (BIRD's or FRR's included).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from bgpnet.model import BfdPeer, IPAddress

log = logging.getLogger(__name__)

# Seconds between a death of the process and its restart: doubled after each quick death up to the cap (a
# port held by another BFD daemon would otherwise make a restart, and a log line, every second), back to the
# first once a process has run for STABLE_AFTER.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 60.0


@dataclass(frozen=True)
class BfdChange:
    """A BFD session changed state (the process's `state` line)."""

    peer: IPAddress
    old: str
    new: str
    diag: int
    remote: str  # the state the peer last sent
    detect_ms: float  # the detection time negotiated at that moment (0 before the peer was heard)

    @property
    def failed(self) -> bool:
        """The path to the peer is declared dead: Up -> Down, but not because the peer said AdminDown (its
        BFD was switched off, which RFC 5882 §3.2 says must not bring the BGP session down)."""
        return self.old == "Up" and self.new == "Down" and self.remote != "AdminDown"


@dataclass(frozen=True)
class BfdSessionState:
    """What status and metrics show of one session."""

    state: str
    diag: int = 0
    detect_ms: float = 0.0  # negotiated: the peer's multiplier x max(our RequiredMinRx, its DesiredMinTx)
    tx_ms: float = 0.0


def parse_line(line: str | bytes) -> dict | None:
    """One line of the process's output as a JSON object, None if it is not one (logged by the caller)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def change_of(message: Mapping) -> BfdChange | None:
    """A `state` line as a BfdChange (None for other lines: ready, timers, error)."""
    if "state" not in message:
        return None
    return BfdChange(ipaddress.ip_address(message["peer"]), str(message["old"]), str(message["state"]),
                     int(message.get("diag", 0)), str(message.get("remote", "")),
                     float(message.get("detect_ms", 0.0)))


def wire_peers(peers: Collection[BfdPeer]) -> bytes:
    """The process's input line: the whole wanted set of sessions."""
    ordered = sorted(peers, key=lambda p: (p.address.version, p.address.packed))
    return json.dumps({"peers": [
        {"peer": str(p.address), "local": str(p.local_address), "min_tx_ms": p.min_tx_ms,
         "min_rx_ms": p.min_rx_ms, "multiplier": p.multiplier} for p in ordered]}).encode() + b"\n"


def restart_delay(previous: float, ran_s: float) -> float:
    """How long to wait before starting the process again: RESTART_DELAY after a first death or one that
    follows a stable run, else double the previous wait, up to RESTART_DELAY_MAX."""
    if previous <= 0 or ran_s >= STABLE_AFTER:
        return RESTART_DELAY
    return min(previous * 2, RESTART_DELAY_MAX)


def default_argv() -> list[str]:
    return [sys.executable, "-m", "bgpnet.bfd"]


class BfdProcess:
    def __init__(self, on_change: Callable[[BfdChange], None], *, argv: list[str] | None = None) -> None:
        self._on_change = on_change
        self._argv = argv or default_argv()
        self._lock = threading.Lock()
        self._wanted: frozenset[BfdPeer] = frozenset()
        self._proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sessions: dict[IPAddress, BfdSessionState] = {}
        self.restarts = 0
        self.errors = 0

    # --- the agent's calls ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bfd", daemon=True)
        self._thread.start()

    def set(self, peers: Collection[BfdPeer]) -> None:
        """The sessions to run now (the process adds, re-times with a Poll, or removes with AdminDown)."""
        wanted = frozenset(peers)
        with self._lock:
            if wanted == self._wanted:
                return
            self._wanted = wanted
            addresses = {p.address for p in wanted}
            self._sessions = {a: s for a, s in self._sessions.items() if a in addresses}
            self._write(self._proc)

    def stop(self) -> None:
        """Close the process's stdin: it sends nothing more and exits; peers see our sessions time out."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
            if proc is not None:
                _close_stdin(proc)
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def sessions(self) -> Mapping[IPAddress, BfdSessionState]:
        with self._lock:
            return dict(self._sessions)

    # --- the reader thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        close_fds=True)
            except OSError as exc:
                delay = restart_delay(delay, 0.0)
                log.error("cannot start the BFD process error=%s; retrying in %.0fs", exc, delay)
                self._stopping.wait(delay)
                continue
            log.info("started the BFD process pid=%d", proc.pid)
            with self._lock:
                self._proc = proc
                self._sessions = {}
                self._write(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                self._read(line)
            code = proc.wait()
            with self._lock:
                self._proc = None
                self._sessions = {}
            if self._stopping.is_set():
                return
            self.restarts += 1
            delay = restart_delay(delay, time.monotonic() - started)
            log.error("the BFD process exited code=%s; restarting it in %.0fs", code, delay)
            self._stopping.wait(delay)

    def _read(self, line: bytes) -> None:
        message = parse_line(line)
        if message is None:
            log.warning("unreadable line from the BFD process line=%r", line[:200])
            return
        if "error" in message:
            self.errors += 1
            log.error("BFD process error=%s", message["error"])
            return
        if "peer" not in message:
            return  # {"ready": true}
        try:
            peer = ipaddress.ip_address(message["peer"])
            change = change_of(message)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable line from the BFD process line=%r", line[:200])
            return
        with self._lock:
            current = self._sessions.get(peer, BfdSessionState("Down"))
            self._sessions[peer] = BfdSessionState(
                change.new if change is not None else current.state,
                change.diag if change is not None else current.diag,
                float(message.get("detect_ms", current.detect_ms)), float(message.get("tx_ms", current.tx_ms)))
        if change is not None:
            log.info("BFD session peer=%s state=%s old=%s diag=%d remote=%s detect_ms=%.0f", change.peer,
                     change.new, change.old, change.diag, change.remote, change.detect_ms)
            self._on_change(change)

    def _write(self, proc: subprocess.Popen | None) -> None:
        """Under the lock: hand the wanted set to the running process (a new one gets it when it starts)."""
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(wire_peers(self._wanted))
            proc.stdin.flush()
        except OSError:
            pass  # it died; the reader thread restarts it and sends the set again


def _close_stdin(proc: subprocess.Popen) -> None:
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass

