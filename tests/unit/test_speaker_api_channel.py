"""The API channel without a copying relay: the real relay.py, spawned by a fake "ExaBGP" the way ExaBGP 4.2.25
spawns its helpers (pipes on stdin/stdout, own process group), hands both pipes to `api_channel.Connection`
and turns into a small waiter. The fake echoes commands and can write bursts, so each test sees real pipes,
real SCM_RIGHTS and real process deaths."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bgpnet.lab.cluster import wait_for
from bgpnet.speaker import api_channel, exabgp_process
from bgpnet.speaker.exabgp_config import RunFiles

F_GETPIPE_SZ = 1032

# A stand-in for ExaBGP's reactor/api/processes.py: Popen with pipes and setpgrp, one thread that writes to the
# helper's stdin and reads its stdout. Commands: `burst N SIZE` writes N lines of SIZE bytes; anything else
# is echoed as JSON. On EOF from the helper it reports, reaps the helper and waits to be killed.
FAKE_EXABGP = r"""
import json, os, subprocess, sys, time
relay_argv, report = json.loads(sys.argv[1]), sys.argv[2]
def note(text):
    with open(report, "a") as f:
        f.write(text + "\n")
helper = subprocess.Popen(relay_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          preexec_fn=os.setpgrp)
note(f"helper {helper.pid}")
helper.stdin.write(b'{"fake": "started"}\n'); helper.stdin.flush()
for line in helper.stdout:
    words = line.split()
    if words[:1] == [b"burst"]:
        count, size = int(words[1]), int(words[2])
        for i in range(count):
            helper.stdin.write(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * size))
        helper.stdin.flush()
    else:
        helper.stdin.write(json.dumps({"echo": line.decode().strip()}).encode() + b"\n"); helper.stdin.flush()
note("helper-eof")
note(f"helper-exit {helper.wait()}")
time.sleep(3600)
"""


class FakeExaBGP:
    def __init__(self, tmp_path: Path) -> None:
        self.files = RunFiles(tmp_path)
        self.report = tmp_path / "report"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_EXABGP, json.dumps(exabgp_process.relay_argv(self.files)), str(self.report)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def notes(self) -> list[str]:
        return self.report.read_text().splitlines() if self.report.exists() else []

    @property
    def helper_pid(self) -> int:
        line = wait_for(lambda: next((n for n in self.notes() if n.startswith("helper ")), None), 10,
                        what="the fake ExaBGP to spawn its helper")
        return int(line.split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Agent:
    """The speaker's side: accept one helper, read its lines in a thread like Speaker._read_loop does."""

    def __init__(self, files: RunFiles) -> None:
        self.server = api_channel.listen(files.socket)
        self.lines: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self.conn: api_channel.Connection | None = None
        self._accepted = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sock, _ = self.server.accept()
        self.conn = api_channel.Connection(sock)
        self._accepted.set()
        for line in self.conn.lines():
            self.lines.put(line)
        self.ended.set()

    def connection(self) -> api_channel.Connection:
        assert self._accepted.wait(10), "no helper connected"
        return self.conn

    def next_line(self) -> bytes:
        return self.lines.get(timeout=10)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()
        self.thread.join(timeout=10)


@pytest.fixture
def pair(tmp_path):
    agent = Agent(RunFiles(tmp_path))
    fake = FakeExaBGP(tmp_path)
    yield agent, fake
    agent.close()
    fake.stop()


def process_state(pid: int) -> str:
    """'gone', 'Z' (zombie: exited, not yet reaped) or another /proc state letter."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return "gone"
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def readlink(path: str | Path) -> str:
    try:
        return os.readlink(path)
    except FileNotFoundError:  # closed meanwhile
        return ""


def pipe_inodes(pid: int | str) -> set[str]:
    return {n for n in (readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()) if n.startswith("pipe:")}


def test_split_lines_keeps_the_unfinished_rest():
    assert api_channel.split_lines(b"", b"abc") == ([], b"abc")
    assert api_channel.split_lines(b"ab", b"c\nde\n\nf") == ([b"abc", b"de"], b"f")
    assert api_channel.split_lines(b"x", b"\n") == ([b"x"], b"")


def test_helper_hands_over_exabgps_pipes_and_turns_into_a_small_waiter(pair):
    agent, fake = pair
    assert json.loads(agent.next_line()) == {"relay": {"exabgp-pid": fake.proc.pid}}
    assert json.loads(agent.next_line()) == {"fake": "started"}
    agent.connection().send(["announce route 10.0.0.0/24 next-hop self", "withdraw route 10.0.1.0/24"])
    assert json.loads(agent.next_line()) == {"echo": "announce route 10.0.0.0/24 next-hop self"}
    assert json.loads(agent.next_line()) == {"echo": "withdraw route 10.0.1.0/24"}

    helper = fake.helper_pid
    wait_for(lambda: os.path.basename(os.readlink(f"/proc/{helper}/exe")) == "cat", 10, what="the helper's exec")
    # The waiter holds no pipe of ExaBGP's (so ExaBGP sees our close at once); the agent holds both.
    agent_pipes = pipe_inodes("self")
    assert not pipe_inodes(helper) & agent_pipes
    exabgp_pipes = agent_pipes & pipe_inodes(fake.proc.pid)
    assert len(exabgp_pipes) == 2
    # ExaBGP's output pipe kept the 1 MiB the helper gave it (its command pipe keeps the default 64 KiB).
    shared = [int(fd) for fd in os.listdir("/proc/self/fd") if readlink(f"/proc/self/fd/{fd}") in exabgp_pipes]
    assert sorted(fcntl.fcntl(fd, F_GETPIPE_SZ) for fd in shared) == [64 << 10, 1 << 20]
    assert f"PPid:\t{fake.proc.pid}\n" in Path(f"/proc/{helper}/status").read_text()


def test_a_burst_from_exabgp_and_commands_flow_at_the_same_time(pair):
    agent, fake = pair
    conn = agent.connection()
    assert b"exabgp-pid" in agent.next_line()
    agent.next_line()
    # 200 lines of 40 KB (8 MB, far more than the pipe holds) while commands keep going the other way.
    conn.send(["burst 200 40000"])
    conn.send([f"cmd {i}" for i in range(500)])
    got = [json.loads(agent.next_line()) for _ in range(700)]
    bursts = [g["n"] for g in got if "n" in g]
    assert bursts == list(range(200))
    assert all(len(g["pad"]) == 40000 for g in got if "n" in g)
    assert [g["echo"] for g in got if "echo" in g] == [f"cmd {i}" for i in range(500)]


def test_the_agent_sees_its_helper_die_while_exabgp_lives(pair):
    agent, fake = pair
    agent.next_line()
    os.kill(fake.helper_pid, signal.SIGKILL)
    assert agent.ended.wait(10)
    assert fake.proc.poll() is None


def test_the_helper_dies_with_exabgp_and_the_agent_sees_eof(pair):
    agent, fake = pair
    agent.next_line()
    helper = fake.helper_pid
    fake.stop()  # SIGKILL: ExaBGP gets no chance to stop its helper
    assert agent.ended.wait(10)
    wait_for(lambda: process_state(helper) in ("gone", "Z"), 10, what="the helper to die with ExaBGP")


def test_closing_the_connection_tells_exabgp_and_ends_the_helper(pair):
    agent, fake = pair
    agent.next_line()
    agent.connection().close()
    assert agent.ended.wait(10)
    # ExaBGP reads EOF on its helper's stdout (its cue to respawn), and the waiter exits on the socket's EOF.
    wait_for(lambda: "helper-eof" in fake.notes(), 10, what="the fake ExaBGP to see EOF")
    wait_for(lambda: any(n.startswith("helper-exit") for n in fake.notes()), 10, what="the helper to exit")


def test_no_descriptors_leak_across_exabgp_restarts(tmp_path):
    def one_round(n: int, how: str) -> None:
        agent = Agent(RunFiles(tmp_path / str(n)))
        fake = FakeExaBGP(tmp_path / str(n))
        agent.next_line()
        if how == "exabgp dies":
            fake.stop()
            assert agent.ended.wait(10)
        elif how == "helper dies":
            os.kill(fake.helper_pid, signal.SIGKILL)
            assert agent.ended.wait(10)
        agent.close()
        fake.stop()

    for n, how in enumerate(["agent closes", "exabgp dies"]):  # warm-up: imports, thread machinery
        (tmp_path / str(n)).mkdir()
        one_round(n, how)
    before = sorted(os.listdir("/proc/self/fd"))
    for n, how in enumerate(["agent closes", "exabgp dies", "helper dies"] * 2, start=2):
        (tmp_path / str(n)).mkdir()
        one_round(n, how)
    wait_for(lambda: sorted(os.listdir("/proc/self/fd")) == before, 10, what=f"descriptors back to {before}")


def test_a_client_that_sends_no_descriptors_is_heard_and_dropped(tmp_path):
    files = RunFiles(tmp_path)
    server = api_channel.listen(files.socket)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(files.socket))
    client.sendall(b'{"relay": {"exabgp-pid": 1}}\n')
    sock, _ = server.accept()
    conn = api_channel.Connection(sock)
    assert list(conn.lines()) == [b'{"relay": {"exabgp-pid": 1}}']
    conn.send(["ignored"])
    conn.close()
    assert client.recv(10) == b""  # the agent hung up
    client.close()
    server.close()


def test_the_helper_dies_with_exabgp_even_while_the_agent_holds_everything(tmp_path):
    # No reader here, so nobody closes the socket when ExaBGP dies: only PR_SET_PDEATHSIG can end the waiter.
    files = RunFiles(tmp_path)
    server = api_channel.listen(files.socket)
    fake = FakeExaBGP(tmp_path)
    try:
        sock, _ = server.accept()
        hello, fds = api_channel.receive_handoff(sock)
        assert json.loads(hello) == {"relay": {"exabgp-pid": fake.proc.pid}} and len(fds) == 2
        helper = fake.helper_pid
        wait_for(lambda: os.path.basename(os.readlink(f"/proc/{helper}/exe")) == "cat", 10, what="the exec")
        fake.stop()
        wait_for(lambda: process_state(helper) in ("gone", "Z"), 10, what="the helper to die with ExaBGP")
        assert sock.recv(10) == b""
    finally:
        for fd in fds:
            os.close(fd)
        sock.close()
        server.close()
        fake.stop()
