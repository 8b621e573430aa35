"""Helpers shared by the benchmark scripts: statistics, tables, cheap kernel route counts, BIRD's control socket.

Every script in bench/ prints a human table and then one line `JSON: {...}` (run_all.py collects those lines).
The helpers here are deliberately small and standard-library only (plus bgpnet.lab.netns for namespaces), so
the pure ones are unit-tested (tests/unit/test_bench_lib.py) and the scripts stay readable.

Route counts come from `/proc/net/fib_triestat`: the kernel keeps per-trie counters, so reading it costs far
less than dumping tens of thousands of routes with `ip route`. The file reports the namespace of the *thread*
that opens it (`/proc/thread-self/net`), and a seq_file re-generates its content on every read from offset 0,
so one descriptor opened inside the namespace is polled with `pread` from any thread.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
from collections.abc import Iterable, Sequence

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


def parse_fib_prefixes(text: bytes) -> int:
    """Prefixes in the first trie of fib_triestat ("Main:"; without policy routing the kernel merges the local
    table into it, so connected and local addresses are counted too: compare against a baseline)."""
    match = _PREFIXES.search(text)
    if match is None:
        raise ValueError("no 'Prefixes:' line in fib_triestat")
    return int(match.group(1))


class FibCounter:
    """IPv4 route count of one network namespace, read from a descriptor opened inside it."""

    def __init__(self, netns_path: str | None = None) -> None:
        if netns_path is None:
            self._fd = os.open("/proc/thread-self/net/fib_triestat", os.O_RDONLY)
        else:
            from bgpnet.lab.netns import entered

            with entered(netns_path):
                self._fd = os.open("/proc/thread-self/net/fib_triestat", os.O_RDONLY)

    def count(self) -> int:
        return parse_fib_prefixes(os.pread(self._fd, 1 << 16, 0))

    def close(self) -> None:
        os.close(self._fd)


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
