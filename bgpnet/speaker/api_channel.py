"""The speaker's end of the process API: ExaBGP's own pipes, handed over by its helper through a Unix socket.

The helper ExaBGP spawns (relay.py) connects to the socket, sends one hello line naming its ExaBGP together
with its stdin and stdout (SCM_RIGHTS), and stays connected as a tiny waiting process. From then on the agent
reads ExaBGP's output pipe and writes ExaBGP's command pipe itself: no process copies the bytes in between.
The socket is the helper's heartbeat: EOF on it means the helper died (EOF on the output pipe means ExaBGP
did, as ExaBGP holds its write end).

Reading and writing are split on purpose. ExaBGP blocks while writing to its helper, so the speaker must
drain the output pipe continuously; a command written from the reading thread could block on a full pipe
while ExaBGP blocks on us. Commands therefore go through a queue to a writer thread, and the reader only
ever reads. Each thread closes the descriptors it uses itself, so `close()` from another thread never
closes a descriptor under a running system call (the number could be reused by then). The socket lives in
the run directory, so helpers in any network namespace reach it (path-based Unix sockets are not
per-namespace; abstract ones would be).
"""

from __future__ import annotations

import logging
import os
import queue
import select
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_CLOSE = object()
CHUNK = 1 << 20
# The helper sends its hello and the descriptors right after connecting; anything slower is not our helper.
HANDOFF_TIMEOUT = 5.0
_HELLO_MAX = 4096


def listen(path: Path) -> socket.socket:
    """Listen on `path` (replacing a stale socket file from an earlier run)."""
    if path.exists() or path.is_symlink():
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # AF_UNIX paths are limited to 108 bytes; a descriptor of the directory keeps deep run dirs usable.
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        server.bind(f"/proc/self/fd/{dir_fd}/{path.name}" if len(str(path)) > 100 else str(path))
    finally:
        os.close(dir_fd)
    os.chmod(path, 0o600)
    server.listen(4)
    return server


def receive_handoff(sock: socket.socket) -> tuple[bytes, list[int]]:
    """The helper's hello line and the descriptors sent with it (close-on-exec, so no child inherits them)."""
    data, fds = b"", []
    sock.settimeout(HANDOFF_TIMEOUT)
    try:
        while b"\n" not in data and len(data) < _HELLO_MAX:
            chunk, received, _, _ = socket.recv_fds(sock, _HELLO_MAX, 2, socket.MSG_CMSG_CLOEXEC)
            fds.extend(received)
            if not chunk:
                break
            data += chunk
    except OSError as exc:  # includes the timeout
        log.debug("API helper hand-off failed: %s", exc)
    finally:
        sock.settimeout(None)
    return data, fds


def split_lines(pending: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete non-empty lines (without newline) in `pending + data`, and the unfinished rest."""
    if b"\n" not in data:
        return [], pending + data
    parts = data.split(b"\n")
    if pending:  # only the first line is glued, not the whole (up to 1 MiB) chunk
        parts[0] = pending + parts[0]
    rest = parts.pop()
    return [p for p in parts if p], rest


class Connection:
    """One helper connection: `lines()` yields the hello, then what ExaBGP wrote (one line each, without its
    newline); `send()` queues commands for ExaBGP; `close()` ends both directions."""

    def __init__(self, sock: socket.socket) -> None:
        self._helper = sock
        hello, fds = receive_handoff(sock)
        self._hello = hello.split(b"\n", 1)[0]
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            fds = [-1, -1]
        self._output, self._input = fds      # ExaBGP's output (we read), ExaBGP's input (we write)
        self._lock = threading.Lock()
        self._closing = False
        self._reading = False
        self._reader_done = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="speaker-writer", daemon=True)
        self._writer.start()

    def lines(self) -> Iterator[bytes]:
        with self._lock:
            if self._reader_done:
                return
            self._reading = True
        try:
            if self._hello:
                yield self._hello
            if self._output >= 0:
                yield from self._read_output()
        finally:
            with self._lock:
                self._close_reader_side()

    def _read_output(self) -> Iterator[bytes]:
        fd = self._output
        os.set_blocking(fd, False)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(self._helper, select.POLLIN)
        pending = b""
        while not self._closing:
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                # Nothing from ExaBGP: sleep until it writes or the helper socket says something.
                ready = {ready_fd for ready_fd, _ in poller.poll()}
                if fd not in ready and self._helper_gone():
                    return
                continue
            except OSError as exc:
                log.debug("reading ExaBGP's output failed: %s", exc)
                return
            if not data:  # every writer closed: ExaBGP exited
                return
            lines, pending = split_lines(pending, data)
            yield from lines

    def _helper_gone(self) -> bool:
        """True on EOF from the helper (it died, or `close()` shut the socket); the helper sends nothing else."""
        try:
            return not self._helper.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True

    def send(self, commands: Iterable[str]) -> None:
        data = "".join(f"{c}\n" for c in commands).encode()
        if data:
            self._queue.put(data)

    def _write_loop(self) -> None:
        fd = self._input
        try:
            while fd >= 0:
                data = self._queue.get()
                if data is _CLOSE:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
        except OSError as exc:
            log.debug("ExaBGP's input closed while writing: %s", exc)
        finally:
            if fd >= 0:
                os.close(fd)  # ExaBGP sees POLLHUP on its end: its helper is gone

    def _close_reader_side(self) -> None:
        """Under _lock: close what the reader uses (only when no reader is using it)."""
        self._reader_done = True
        if self._output >= 0:
            os.close(self._output)
            self._output = -1
        self._helper.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            if not self._reading:
                self._close_reader_side()
        try:
            # Wakes a reader waiting in poll(); it then closes its descriptors itself.
            self._helper.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._queue.put(_CLOSE)
        self._writer.join(timeout=5)
