"""Processes identified by (PID, start time), so a later `bgpnet lab down` never kills a recycled PID.

A PID alone is not an identity: after the lab's agent exits, the kernel may hand its number to an unrelated
process. The start time in `/proc/PID/stat` (field 22, clock ticks since boot) does not change across exec and
differs for the new process, so the pair names exactly the process the lab started.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start_time: int
    name: str = ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces; the rest follows the last ')'.
    return stat.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 overall; fields[0] is field 3 (state)


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None  # field 4 overall (ppid)


def identify(pid: int, name: str = "") -> ProcessId:
    started = start_time(pid)
    if started is None:
        raise ProcessLookupError(pid)
    return ProcessId(pid, started, name)


def is_running(proc: ProcessId) -> bool:
    """The very process we started is still there (a zombie counts as gone: it has already exited)."""
    fields = _stat_fields(proc.pid)
    return fields is not None and int(fields[19]) == proc.start_time and fields[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    # When the process is our own child (an interrupted `up` cleaning up), collect it so it does not linger as
    # a zombie; in a later `down` it is not our child and init reaps it.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(procs: list[ProcessId], timeout: float = 3.0) -> list[ProcessId]:
    """SIGTERM all, then SIGKILL whatever still runs after `timeout`; skips processes that are gone or whose PID
    was recycled. Signalling all first lets them shut down in parallel. Returns those that were signalled."""
    signalled = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            if not is_running(proc):
                _reap(proc.pid)
                continue
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                continue
            if proc not in signalled:
                signalled.append(proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in procs:
                _reap(proc.pid)
            if not any(is_running(p) for p in procs):
                return signalled
            time.sleep(0.02)
    return signalled


def descendants(pid: int) -> list[int]:
    """All processes below `pid` in the process tree (e.g. an agent's ExaBGP and its helper)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
