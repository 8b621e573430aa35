"""The process ExaBGP spawns for its API: it splices ExaBGP's stdin/stdout to the speaker's Unix socket.

ExaBGP only talks to helpers it forks itself, while the speaker is a long-lived object in the agent. This
relay is the bridge: `python -S relay.py SOCKET`, standard library only, so it starts in a few milliseconds.
Each direction runs in its own thread so a slow reader on one side can never stall the other (ExaBGP blocks
on writes to its helper; a single-threaded relay could deadlock it against the speaker). It exits when
either side closes: ExaBGP then respawns it, or the speaker sees the socket close.
"""

import fcntl
import os
import socket
import sys
import threading
import time

CHUNK = 1 << 20
# ExaBGP writes one JSON line per UPDATE (~40 KB for a full UPDATE of /26s) and blocks while the pipe to us is
# full: a 1 MiB pipe and socket buffers let it run ahead through a full-table burst instead of waiting for
# this relay and the agent turn by turn (fewer context switches on a 2-core node).
PIPE_BYTES = 1 << 20
SOCKET_BYTES = 4 << 20
F_SETPIPE_SZ = 1031


def _connect(path: str, deadline: float) -> socket.socket:
    # A relative name keeps AF_UNIX's 108-byte path limit out of the way for deep run directories.
    directory, name = os.path.split(path)
    if directory:
        os.chdir(directory)
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(name)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _exabgp_to_speaker(sock: socket.socket, done: threading.Event) -> None:
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, CHUNK)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass
    finally:
        done.set()


def _speaker_to_exabgp(sock: socket.socket, done: threading.Event) -> None:
    fd = sys.stdout.fileno()
    try:
        while True:
            data = sock.recv(CHUNK)
            if not data:
                break
            while data:
                data = data[os.write(fd, data):]
    except OSError:
        pass
    finally:
        done.set()


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: relay.py SOCKET\n")
        return 2
    sock = _connect(sys.argv[1], time.monotonic() + 10)
    try:  # best effort: an unprivileged ExaBGP may be capped by /proc/sys/fs/pipe-max-size
        fcntl.fcntl(sys.stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BYTES)
    # The speaker learns which ExaBGP this relay belongs to (a respawned relay vs a restarted ExaBGP).
    sock.sendall(b'{"relay": {"exabgp-pid": %d}}\n' % os.getppid())
    done = threading.Event()
    for target in (_exabgp_to_speaker, _speaker_to_exabgp):
        threading.Thread(target=target, args=(sock, done), daemon=True).start()
    done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
