"""Helpers shared by the benchmark scripts: statistics, tables, cheap kernel route counts, BIRD's control socket.

Every script in bench/ prints a human table and then one line `JSON: {...}` (run_all.py collects those lines).
The helpers here are deliberately small and standard-library only (plus bgpnet.lab.netns for namespaces), so
the pure ones are unit-tested (tests/unit/test_bench_suite.py) and the scripts stay readable.

Route counts come from kernel counters, never from route dumps: IPv4 from `/proc/net/fib_triestat` (per-trie
counters; the read walks the trie's statistics, ~25 µs per 1k routes), IPv6 from `/proc/net/rt6_stats` (the
namespace's fib6 entry count, O(1): ~2 µs whatever the table size, where reading `/proc/net/ipv6_route` with
50k routes takes seconds). Both files report the namespace of the *thread* that opens them
(`/proc/thread-self/net`), and a seq_file re-generates its content on every read from offset 0, so one
descriptor opened inside the namespace is polled with `pread` from any thread.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import re
import select
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_PREFIXES = re.compile(rb"Prefixes:\s+(\d+)")


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ratio(ours: float, reference: float) -> float | None:
    return round(ours / reference, 3) if reference else None


def block_prefixes(n: int, first: str, length: int) -> list[str]:
    """`n` consecutive aligned prefixes of `length` bits from address `first` (e.g. 10.128.0.0/26, .64/26...)."""
    start = ipaddress.ip_address(first)
    step = 1 << (start.max_prefixlen - length)
    return [f"{ipaddress.ip_address(int(start) + i * step)}/{length}" for i in range(n)]


def parse_fib_prefixes(text: bytes) -> int:
    """Prefixes in the first trie of fib_triestat ("Main:"; without policy routing the kernel merges the local
    table into it, so connected and local addresses are counted too: compare against a baseline)."""
    match = _PREFIXES.search(text)
    if match is None:
        raise ValueError("no 'Prefixes:' line in fib_triestat")
    return int(match.group(1))


def parse_rt6_entries(text: bytes) -> int:
    """IPv6 routes of a namespace from rt6_stats: seven hex fields, the fourth is fib_rt_entries (every fib6
    entry in every table, local and multicast ones included: compare against a baseline)."""
    fields = text.split()
    if len(fields) < 4:
        raise ValueError("rt6_stats has fewer than 4 fields")
    return int(fields[3], 16)


class FibCounter:
    """Route count of one network namespace (IPv4 by default, `version=6` for IPv6), read from a descriptor
    opened inside it."""

    def __init__(self, netns_path: str | None = None, version: int = 4) -> None:
        name, self._parse = (("fib_triestat", parse_fib_prefixes) if version == 4
                             else ("rt6_stats", parse_rt6_entries))
        path = f"/proc/thread-self/net/{name}"
        if netns_path is None:
            self._fd = os.open(path, os.O_RDONLY)
        else:
            from bgpnet.lab.netns import entered

            with entered(netns_path):
                self._fd = os.open(path, os.O_RDONLY)

    def count(self) -> int:
        return self._parse(os.pread(self._fd, 1 << 16, 0))

    def close(self) -> None:
        os.close(self._fd)


class RouteEvents:
    """IPv4 route notifications of one network namespace (rtnetlink group RTMGRP_IPV4_ROUTE), so a waiter
    sleeps until the kernel adds or deletes a route instead of polling, and reads the clock when it wakes.

    A netlink socket belongs to the namespace it was created in, so it is opened inside that namespace. The
    notifications only wake the waiter: the route count itself is read from a FibCounter, so a burst the socket
    could not hold (ENOBUFS) loses nothing."""

    RTMGRP_IPV4_ROUTE = 0x40  # linux/rtnetlink.h

    def __init__(self, netns_path: str) -> None:
        from bgpnet.lab.netns import entered

        with entered(netns_path):
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)  # NETLINK_ROUTE
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self._sock.bind((0, self.RTMGRP_IPV4_ROUTE))
        self._sock.setblocking(False)

    def _drain(self) -> None:
        while True:
            try:
                self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:  # notifications were dropped: the count is read anyway
                    raise

    def wait_count(self, counter: FibCounter, target: int, timeout: float) -> float:
        """time.monotonic() at which `counter` was first seen at `target`: re-read after every burst of route
        notifications (and every 50 ms regardless)."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            value = counter.count()
            now = time.monotonic()
            if value == target:
                return now
            if now > deadline:
                raise TimeoutError(f"route count {value} never reached {target} in {timeout:.0f} s")
            select.select([self._sock], [], [], min(deadline - now, 0.05))

    def close(self) -> None:
        self._sock.close()


@dataclass
class CountWatch:
    """When a polled route count first left its start value and when it reached its target (time.time())."""

    first: float | None
    done: float


def watch_count(counter: FibCounter, target: int, *, timeout: float, poke: Callable[[], object] | None = None,
                poke_every: float = 0.005) -> CountWatch:
    """Poll `counter` until it equals `target`; `poke` runs every `poke_every` s meanwhile (see route_install's
    docstring: BIRD's missed wakeup).

    The pause between reads is 8x the read time (at least 0.5 ms): fib_triestat walks the trie (~25 µs per 1k
    routes), so the poller stays near 10 % of one core, steals little CPU from the receivers it measures, and
    still resolves ~1 % of the measured time."""
    start = counter.count()
    first = None
    started = last_poke = time.time()
    while True:
        before = time.perf_counter()
        value = counter.count()
        now = time.time()
        if first is None and value != start:
            first = now
        if value == target:
            return CountWatch(first, now)
        if poke is not None and now - last_poke > poke_every:
            poke()
            last_poke = now
        if now - started > timeout:
            raise TimeoutError(f"route count {value} never reached {target} in {timeout:.0f} s")
        time.sleep(max(0.0005, 8 * (time.perf_counter() - before)))


_BIRD_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
_REPLY_CODE = re.compile(r"^\d{4}[- ]")


def bird_since(show_protocols: str, name: str) -> float:
    """The Unix time of protocol `name`'s last state change, from BIRD's `show protocols` reply as its control
    socket sends it (lines may start with a reply code, `1002-`, or a continuation space). Needs `timeformat
    protocol iso long us;` in BIRD's config; BIRD prints local time, as time.mktime reads it."""
    for line in show_protocols.splitlines():
        fields = _REPLY_CODE.sub("", line).split()
        if fields and fields[0] == name:
            match = _BIRD_TIME.search(line)
            if match is None:
                raise ValueError(f"no time in BIRD protocol line {line!r}: timeformat protocol iso long us?")
            stamp = datetime.strptime(match.group(0), "%Y-%m-%d %H:%M:%S.%f")
            return time.mktime(stamp.timetuple()) + stamp.microsecond / 1e6
    raise ValueError(f"protocol {name} not in BIRD's reply")


@dataclass(frozen=True)
class BirdBfdSession:
    """One row of BIRD's `show bfd sessions`: its state, and the transmit interval and detection time (s) it uses
    (Interval: max(its min tx, the neighbour's min rx); Timeout: the neighbour's multiplier x max(its min rx,
    the neighbour's min tx) -- both at the slow 1 s rate until the session is Up)."""

    state: str
    since: str  # when it entered that state, in BIRD's `timeformat protocol`
    interval_s: float
    timeout_s: float


def bird_bfd_sessions(reply: str) -> dict[str, BirdBfdSession]:
    """Address -> session from BIRD's `show bfd sessions` reply (control socket or birdc text)."""
    sessions = {}
    for line in reply.splitlines():
        fields = _REPLY_CODE.sub("", line).split()
        if len(fields) < 6:
            continue
        try:
            address = str(ipaddress.ip_address(fields[0]))
            sessions[address] = BirdBfdSession(fields[2], " ".join(fields[3:-2]), float(fields[-2]), float(fields[-1]))
        except ValueError:
            continue
    return sessions


def spread(values: Sequence[float], digits: int = 4) -> dict:
    """Median, min and max of a sample, plus the sample (as the JSON documents report every figure)."""
    return {"median": round(median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "all": [round(v, digits) for v in values]}


@contextlib.contextmanager
def work_directory(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh directory for a benchmark's configs and logs, removed afterwards unless `keep` (then named)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"work directory kept: {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def loadavg() -> str:
    """The 1, 5 and 15 min load averages (the machine may be shared: every benchmark records them)."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class BirdControl:
    """BIRD's CLI protocol over its control socket (what birdc speaks), without spawning birdc per command.

    Replies are lines `DDDD-text` (more follows) or `DDDD text` (last line); codes 0xxx are OK, 8xxx/9xxx are
    errors. A line starting with a space continues the previous one."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._file = self._sock.makefile("rb")
        self._read_reply()  # greeting: "0001 BIRD 2.0.12 ready."

    def _read_reply(self) -> str:
        lines = []
        while True:
            line = self._file.readline()
            if not line:
                raise ConnectionError("BIRD closed its control socket")
            text = line.decode(errors="replace").rstrip("\n")
            lines.append(text)
            if len(text) >= 5 and text[:4].isdigit() and text[4] == " ":
                return "\n".join(lines)

    def command(self, text: str) -> str:
        self._sock.sendall(text.encode() + b"\n")
        reply = self._read_reply()
        last = reply.rsplit("\n", 1)[-1]
        if last[:1] in ("8", "9"):
            raise RuntimeError(f"birdc {text!r}: {reply}")
        return reply

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned, text left-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in cells) if cells else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)]).rstrip() + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x"))
        return True
    except ValueError:
        return text == "-"


def emit_json(name: str, document: dict) -> None:
    """The machine-readable result: one line, prefixed so run_all.py can find it among the table lines."""
    print("JSON:", json.dumps({"benchmark": name, **document}), flush=True)


def rss_kib(pid: int) -> int:
    """Resident set size of one process (VmRSS), 0 when it is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def pin(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of a process to `cpus` (children started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            continue


def tree_rss_kib(pids: Iterable[int]) -> int:
    """RSS summed over processes (e.g. agent + ExaBGP + its helper)."""
    return sum(rss_kib(pid) for pid in pids)


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages divided among their sharers), 0 when the process is gone."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process in clock ticks (0 when it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_ns(pids: list[int]) -> int:
    """CPU time of every thread of these processes in nanoseconds (/proc/PID/task/TID/schedstat, first field:
    time on a CPU). Unlike wall time on a shared 2-core machine, it does not grow when other work competes."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                    total += int(stat.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
    return total


def wait_idle(pids: list[int], *, window: float = 0.2, cpu_fraction: float = 0.05, timeout: float = 60) -> None:
    """Return once these processes together used less than `cpu_fraction` of one core over `window` seconds
    (the receivers have finished what they were doing: an apply, ExaBGP's bookkeeping)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_ns(pids)
        time.sleep(window)
        if cpu_ns(pids) - before < cpu_fraction * window * 1e9:
            return
    raise TimeoutError(f"processes {pids} still busy after {timeout:.0f} s")
