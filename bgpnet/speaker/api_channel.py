"""The speaker's end of the process API: a Unix socket the relay connects to, one connection at a time.

Reading and writing are split on purpose. ExaBGP blocks while writing to its helper, so the speaker must
drain the socket continuously; a command written from the reading thread could block on a full socket
while ExaBGP blocks on us. Commands therefore go through a queue to a writer thread, and the reader only
ever reads. The socket lives in the run directory, so relays in any network namespace reach it (path-based
Unix sockets are not per-namespace; abstract ones would be).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_CLOSE = object()


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


class Connection:
    """One relay connection: `lines()` yields what ExaBGP wrote, `send()` queues commands for it."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        # A full-table burst arrives as ~40 KB lines: a large receive buffer lets the relay keep writing while
        # the reader thread is busy with the previous line.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="speaker-writer", daemon=True)
        self._writer.start()

    def lines(self) -> Iterator[bytes]:
        with self._sock.makefile("rb", buffering=1 << 20) as stream:
            try:
                yield from stream
            except OSError:
                return

    def send(self, commands: Iterable[str]) -> None:
        data = "".join(f"{c}\n" for c in commands).encode()
        if data:
            self._queue.put(data)

    def _write_loop(self) -> None:
        while True:
            data = self._queue.get()
            if data is _CLOSE:
                return
            try:
                self._sock.sendall(data)
            except OSError as exc:
                log.debug("API connection closed while writing: %s", exc)
                return

    def close(self) -> None:
        self._queue.put(_CLOSE)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._writer.join(timeout=5)
