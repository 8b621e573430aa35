"""Start and stop one ExaBGP process (the only place that spawns or signals it).

ExaBGP runs as a subprocess with generated files rather than in-process: it installs signal handlers, may
change user and keeps global state. The child gets a scrubbed environment because ExaBGP reads any
`exabgp.*`/`exabgp_*` variable as configuration (and `exabgp_cli_pipe` turns it into a CLI client), so
settings of the agent's own environment must not leak into it. Signals go to the PID we spawned, nothing
else.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bgpnet.speaker.exabgp_config import RunFiles

log = logging.getLogger(__name__)

RELAY = Path(__file__).with_name("relay.py")


def default_exabgp_argv() -> list[str]:
    """ExaBGP from the interpreter's own environment (the pinned 4.2.25), through bgpnet's launcher, which
    removes two per-prefix costs ExaBGP's configuration cannot turn off (see bgpnet.speaker.exabgp)."""
    return [sys.executable, "-m", "bgpnet.speaker.exabgp"]


def relay_argv(files: RunFiles) -> list[str]:
    # -S skips site-packages: the relay needs only the standard library and starts in a few milliseconds;
    # it hands ExaBGP's pipes to the speaker and then execs a ~1 MB waiter (see relay.py).
    return [sys.executable, "-S", str(RELAY), str(files.socket)]


def child_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().startswith("exabgp")}


def spawn(argv_prefix: Sequence[str], files: RunFiles) -> subprocess.Popen:
    """Start ExaBGP on this instance's env and config; its log goes to exabgp.log (previous run: .1)."""
    if files.log.exists():
        os.replace(files.log, files.log.with_suffix(".log.1"))
    with open(files.log, "wb") as out:
        proc = subprocess.Popen(
            [*argv_prefix, "--env", str(files.env), str(files.config)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=files.run_dir,
            env=child_environment(), close_fds=True)
    log.info("started ExaBGP pid %d in %s", proc.pid, files.run_dir)
    return proc


def signal_process(proc: subprocess.Popen, sig: int) -> None:
    """Signal our child by PID; a no-op once it has been reaped (so a recycled PID is never hit)."""
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def reload(proc: subprocess.Popen) -> None:
    """SIGUSR1: ExaBGP re-reads its config, adds and removes neighbors, keeps unchanged sessions up."""
    signal_process(proc, signal.SIGUSR1)


def terminate(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM (ExaBGP sends NOTIFICATIONs and stops its helper), SIGKILL if it does not exit in time.

    ExaBGP ignores a signal that arrives while it is still handling the previous one (e.g. a SIGUSR1
    reload), so SIGTERM is repeated every second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        signal_process(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            continue
    log.warning("ExaBGP pid %d ignored SIGTERM for %.0f s, killing it", proc.pid, timeout)
    signal_process(proc, signal.SIGKILL)
    return proc.wait(timeout=timeout)


def kill(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGKILL and reap: ExaBGP sends nothing, the kernel closes its TCP connections (see Speaker.stop). Its
    API helper (the relay's waiter) dies with it (PR_SET_PDEATHSIG) and on EOF from the speaker's socket."""
    signal_process(proc, signal.SIGKILL)
    return proc.wait(timeout=timeout)


def log_tail(files: RunFiles, lines: int = 15) -> str:
    try:
        return "\n".join(files.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
