"""The process ExaBGP spawns for its API: it hands ExaBGP's pipes to the speaker, then only waits.

ExaBGP only talks to helpers it forks itself (the helper's stdin carries ExaBGP's JSON, its stdout our
commands), while the speaker is a long-lived object in the agent. Copying every byte between the pipes and
the agent would cost a Python process and a copy of every full-table burst, so this helper passes the two
pipe ends themselves to the speaker's Unix socket (SCM_RIGHTS) and the agent reads and writes them directly.
`python -S relay.py SOCKET`, standard library only, so it starts in a few milliseconds.

It cannot simply exit afterwards: ExaBGP 4.2 treats an exited helper as dead and respawns it. So it execs
`cat` with the socket as stdin (about 1 MB instead of a Python interpreter), which gives every side the
signal it needs:
- the speaker sees EOF on the socket when the helper dies; the pipes cannot tell it, because ExaBGP itself
  holds the write end of the pipe the speaker reads;
- `cat` exits when the speaker closes the socket (connection refused, agent gone);
- PR_SET_PDEATHSIG (kept across execve) kills it when ExaBGP dies;
- it keeps no copy of the pipes, so when the speaker closes them ExaBGP sees POLLHUP at once (and respawns
  its helper), exactly as when the old copying relay exited.
"""

import fcntl
import os
import signal
import socket
import sys
import time

# ExaBGP writes one line per UPDATE (its 4 KB, in hex, inside a JSON envelope) and blocks while the pipe is full:
# a 1 MiB pipe lets it run ahead through a full-table burst instead of waiting for the agent turn by turn
# (fewer context switches on a 2-core node). The pipe keeps its size when its end moves to the agent.
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031
PR_SET_PDEATHSIG = 1
WAITERS = ("/usr/bin/cat", "/bin/cat")
WAITER_NAME = "bgpnet-relay-wait"
EXABGP_OUTPUT, EXABGP_INPUT = 0, 1


def _die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL us when ExaBGP exits (the setting survives execve of a non-setuid binary)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass  # then only the speaker closing the socket ends the waiter
    if os.getppid() != parent:  # ExaBGP died before prctl took effect
        sys.exit(0)


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


def _become_waiter(sock: socket.socket) -> None:
    """Drop our copies of ExaBGP's pipes and wait for the socket's EOF in the smallest process at hand."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sock.fileno(), 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sock.close()
    for path in WAITERS:
        try:
            os.execv(path, [WAITER_NAME])
        except OSError:
            continue
    while os.read(0, 4096):  # no cat on this machine: wait here, in Python
        pass


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: relay.py SOCKET\n")
        return 2
    exabgp = os.getppid()
    _die_with(exabgp)
    try:  # best effort: an unprivileged ExaBGP may be capped by /proc/sys/fs/pipe-max-size
        fcntl.fcntl(EXABGP_OUTPUT, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass
    sock = _connect(sys.argv[1], time.monotonic() + 10)
    # The speaker learns which ExaBGP this helper belongs to (a respawned helper vs a restarted ExaBGP).
    hello = b'{"relay": {"exabgp-pid": %d}}\n' % exabgp
    socket.send_fds(sock, [hello], [EXABGP_OUTPUT, EXABGP_INPUT])
    _become_waiter(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
