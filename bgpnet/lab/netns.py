"""Network namespaces, veths and processes that are created, tracked and removed as one unit.

The lab and every privileged test build their "cluster" with this: each namespace gets a unique name with a
per-run prefix, every process started in one is remembered by PID, and `close()` kills exactly those PIDs and
deletes exactly those namespaces, also after a failure half-way through. Nothing outside is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Netns:
    """One named network namespace (`/run/netns/<name>`)."""

    def __init__(self, name: str, owner: NetnsGroup) -> None:
        self.name = name
        self._owner = owner

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, check: bool = True, timeout: float = 30, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace and return its output (raises on failure when `check`)."""
        proc = subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise RuntimeError(f"in netns {self.name}: {' '.join(argv)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def spawn(self, argv: Sequence[str], **popen_kwargs: object) -> subprocess.Popen:
        """Start a long-running process inside the namespace; it is killed by PID on close()."""
        return self._owner.track(subprocess.Popen(self.argv(argv), **popen_kwargs))  # type: ignore[arg-type]

    def sysctl(self, key: str, value: str | int) -> None:
        # A new netns copies IPv4 defaults from the host namespace, so every knob that matters is set explicitly.
        self.run("sysctl", "-qw", f"{key}={value}")

    def as_router(self) -> None:
        """Forward packets and accept asymmetric paths, as a Kubernetes node or a ToR does."""
        self.run("ip", "link", "set", "lo", "up")
        for key, value in (("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1),
                           ("net.ipv4.conf.all.rp_filter", 0), ("net.ipv4.conf.default.rp_filter", 0)):
            self.sysctl(key, value)

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"


class NetnsGroup:
    """Owns a set of namespaces and processes; use as a context manager so cleanup always runs."""

    def __init__(self, prefix: str = "bgpt", on_change: Callable[[NetnsGroup], None] | None = None) -> None:
        # The per-run tag keeps parallel runs (and a crashed earlier run) from colliding.
        self.tag = f"{prefix}{uuid.uuid4().hex[:6]}"
        self.namespaces: list[Netns] = []
        self.processes: list[subprocess.Popen] = []
        self.cleanup_paths: list[Path] = []
        # Called after every namespace or process is added, e.g. to persist them for a later `lab down`.
        self._on_change = on_change

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    def add(self, short: str) -> Netns:
        name = f"{self.tag}-{short}"
        ns = Netns(name, self)
        # Recorded before it exists: an interruption right after `ip netns add` must still find it to delete.
        self.namespaces.append(ns)
        self._changed()
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
        return ns

    def track(self, proc: subprocess.Popen) -> subprocess.Popen:
        self.processes.append(proc)
        self._changed()
        return proc

    def veth(self, a: Netns, a_if: str, b: Netns, b_if: str) -> None:
        """A veth pair with one end in each namespace, both ends up.

        Created directly inside `a` with its peer in `b`: the host namespace never sees it, so an interrupted
        run cannot leave a stray interface there."""
        _ip("-n", a.name, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
        _ip("-n", a.name, "link", "set", a_if, "up")
        _ip("-n", b.name, "link", "set", b_if, "up")

    def stop_process(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5) -> None:
        """Signal one tracked process by PID and wait for it; escalate to SIGKILL."""
        if proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def close(self) -> None:
        for proc in reversed(self.processes):
            self.stop_process(proc, timeout=3)
        for ns in reversed(self.namespaces):
            kill_processes_in(ns.name)
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
        for path in self.cleanup_paths:
            subprocess.run(["rm", "-rf", str(path)], capture_output=True)
        self.namespaces.clear()
        self.processes.clear()

    def __enter__(self) -> NetnsGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def entered(netns_path: str) -> Iterator[None]:
    """Run the body with the calling *thread* inside another network namespace.

    setns(2) switches only the calling thread, and a socket stays in the namespace it was created in, so a
    server created here listens inside the namespace even after the thread switches back. This is how an
    in-process test server (e.g. the Kubernetes API stand-in) becomes reachable from agents in that namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
        try:
            yield
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover - would leave the thread stranded
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to own netns: {os.strerror(err)}")
    finally:
        os.close(target)
        os.close(own)


def kill_processes_in(name: str) -> None:
    """Kill what is still running inside a namespace the caller created (children of tracked processes that
    outlived them, e.g. an ExaBGP helper): `ip netns pids` names only processes in *that* namespace."""
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    pids = [int(p) for p in proc.stdout.split() if p.isdigit() and int(p) != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists()]
        time.sleep(0.02)
