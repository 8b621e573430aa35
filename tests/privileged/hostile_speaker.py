"""A raw-socket BGP speaker that plays a hostile ToR: it sends whatever octets a test hands it.

The socket is created inside the rogue router's network namespace (bgpnet.lab.netns.entered switches only the
calling thread, and a socket stays in the namespace it was created in), so the test process itself drives the
session: no helper process, no pipe protocol. One reader thread records everything the node sends (OPEN,
KEEPALIVE, UPDATE, NOTIFICATION with code/subcode, and the TCP close); one keepalive thread keeps an
established session alive. Every loop is bounded: socket timeouts, a stop event and a maximum lifetime, so a
forgotten session ends by itself.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from bgpnet.lab.netns import entered
from tests.privileged.hostile_messages import (
    KEEPALIVE,
    NOTIFICATION,
    OPEN,
    Received,
    frame,
    keepalive,
    open_body,
    split_messages,
    standard_capabilities,
)

MAX_LIFETIME = 300.0  # seconds; no single test keeps one session longer


class SessionError(AssertionError):
    """The node did not do what establishing a session needs (it carries what the node sent instead)."""


class RawSession:
    """One TCP connection from `local` (inside `netns_path`) to the node's `remote`:179."""

    def __init__(self, netns_path: str, local: str, remote: str, *, port: int = 179) -> None:
        self.netns_path = netns_path
        self.local = local
        self.remote = remote
        self.port = port
        self.received: list[Received] = []
        self.send_errors: list[str] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._born = time.monotonic()

    # --- connection --------------------------------------------------------------------------------------
    def connect(self, timeout: float = 5.0) -> RawSession:
        with entered(self.netns_path):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.local, 0))
        sock.settimeout(timeout)
        sock.connect((self.remote, self.port))
        sock.settimeout(0.5)  # the reader wakes up this often to look at the stop event
        self._sock = sock
        self._start(self._read, "reader")
        return self

    def establish(self, asn: int, router_id: str, *, hold: int = 9, capabilities: list[bytes] | None = None,
                  timeout: float = 10.0) -> RawSession:
        """Connect, exchange OPENs and KEEPALIVEs (RFC 4271 §8: OpenSent → OpenConfirm → Established), then
        keep the session alive every hold/3 seconds."""
        if self._sock is None:
            self.connect()
        caps = standard_capabilities(asn) if capabilities is None else capabilities
        self.send(frame(OPEN, open_body(asn, router_id, hold, caps)))
        self.expect(lambda m: m.kind == OPEN, timeout, "the node's OPEN")
        self.send(keepalive())
        self.expect(lambda m: m.kind == KEEPALIVE, timeout, "the node's KEEPALIVE (session Established)")
        self._start(lambda: self._keepalives(max(hold / 3, 0.5)), "keepalive")
        return self

    def send(self, data: bytes) -> bool:
        """Send raw octets; False (and the error recorded) when the node already closed the connection."""
        assert self._sock is not None, "not connected"
        try:
            self._sock.sendall(data)
            return True
        except OSError as exc:
            self.send_errors.append(str(exc))
            return False

    def close(self) -> None:
        """Stop both threads and close the socket (a TCP FIN, no NOTIFICATION)."""
        self._stop.set()
        if self._sock is not None:
            # The FIN goes out now, and the reader's recv() returns at once instead of at its next timeout.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what the node sent ------------------------------------------------------------------------------
    def first(self, predicate: Callable[[Received], bool]) -> Received | None:
        with self._changed:
            return next((m for m in self.received if predicate(m)), None)

    def expect(self, predicate: Callable[[Received], bool], timeout: float, what: str) -> Received:
        """Wait for a message matching `predicate`; a NOTIFICATION or close instead ends the wait early."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = next((m for m in self.received if predicate(m)), None)
                if match is not None:
                    return match
                ended = next((m for m in self.received if m.kind in (None, NOTIFICATION)), None)
                left = deadline - time.monotonic()
                if ended is not None or left <= 0:
                    raise SessionError(f"waiting for {what}: node sent {self.transcript()}")
                self._changed.wait(left)

    def ended_by_node(self) -> Received | None:
        """The NOTIFICATION the node sent, else its TCP close, else None (session still open)."""
        return self.first(lambda m: m.kind == NOTIFICATION) or self.first(lambda m: m.kind is None)

    def wait_ended(self, timeout: float) -> Received | None:
        """The node's NOTIFICATION or close, waiting up to `timeout` seconds for one (the lock is an RLock)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.ended_by_node() is None and time.monotonic() < deadline:
                self._changed.wait(max(deadline - time.monotonic(), 0.0))
            return self.ended_by_node()

    def transcript(self) -> str:
        return ", ".join(m.describe() for m in self.received) or "nothing"

    # --- threads -----------------------------------------------------------------------------------------
    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"raw-bgp-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _alive(self) -> bool:
        return not self._stop.is_set() and time.monotonic() - self._born < MAX_LIFETIME

    def _record(self, message: Received) -> None:
        with self._changed:
            self.received.append(message)
            self._changed.notify_all()

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        while self._alive():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                chunk = b""  # reset by the node: as good as a close for what the tests ask
            if not chunk:
                self._record(Received(None, at=time.monotonic()))
                return
            messages, buffer = split_messages(buffer + chunk)
            for kind, body in messages:
                self._record(Received(kind, body, time.monotonic()))

    def _keepalives(self, interval: float) -> None:
        while self._alive() and self.ended_by_node() is None:
            if not self.send(keepalive()):
                return
            self._stop.wait(interval)
