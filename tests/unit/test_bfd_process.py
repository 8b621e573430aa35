"""The agent's side of the BFD process (bgpnet.bfd.process), against a stand-in child that speaks the same JSON
lines: what it is told, the state changes it reports, and its restart when it dies."""

import json
import sys
import threading
import time
from ipaddress import ip_address as A

import pytest

from bgpnet.bfd import process as bfd_process
from bgpnet.bfd.process import (
    BfdChange,
    BfdProcess,
    BfdSessionState,
    change_of,
    parse_line,
    restart_delay,
    wire_peers,
)
from bgpnet.model import BfdPeer

# Echoes every configuration line back as Up/timers reports for each peer; `die` in a peer list exits.
CHILD = r"""
import json, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    peers = json.loads(line)["peers"]
    for p in peers:
        if p["peer"] == "10.0.0.99":
            sys.exit(3)
        print(json.dumps({"peer": p["peer"], "state": "Up", "old": "Init", "diag": 0, "remote": "Up",
                          "detect_ms": 3 * p["min_rx_ms"], "tx_ms": p["min_tx_ms"]}), flush=True)
    print("not json", flush=True)
    print(json.dumps({"error": "bad configuration: test"}), flush=True)
"""


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_the_wire_format_is_the_daemons():
    line = wire_peers([BfdPeer(A("fd00::1"), A("fd00::2"), 100, 200, 5), BfdPeer(A("10.0.0.1"), A("10.0.0.2"))])
    assert json.loads(line) == {"peers": [
        {"peer": "10.0.0.1", "local": "10.0.0.2", "min_tx_ms": 300, "min_rx_ms": 300, "multiplier": 3},
        {"peer": "fd00::1", "local": "fd00::2", "min_tx_ms": 100, "min_rx_ms": 200, "multiplier": 5}]}
    assert line.endswith(b"\n")


@pytest.mark.parametrize(("message", "failed"), [
    ({"old": "Up", "state": "Down", "diag": 1, "remote": "Up"}, True),
    ({"old": "Up", "state": "Down", "diag": 3, "remote": "Down"}, True),
    ({"old": "Up", "state": "Down", "diag": 3, "remote": "AdminDown"}, False),  # RFC 5882 §3.2
    ({"old": "Init", "state": "Down", "diag": 1, "remote": "Init"}, False),
    ({"old": "Init", "state": "Up", "diag": 0, "remote": "Up"}, False),
])
def test_only_a_session_that_was_up_fails(message, failed):
    change = change_of({"peer": "10.0.0.1", "detect_ms": 900.0, **message})
    assert change is not None and change.failed is failed


def test_a_process_that_keeps_dying_is_restarted_ever_more_slowly():
    delays, delay = [], 0.0
    for _ in range(7):
        delay = restart_delay(delay, ran_s=0.1)  # e.g. UDP 3784 held by another BFD daemon
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert restart_delay(30.0, ran_s=3600) == 1.0  # after a stable run, a death is restarted quickly again


def test_lines_that_are_not_state_changes():
    assert change_of({"ready": True}) is None
    assert parse_line(b"[1, 2]") is None and parse_line(b"{") is None
    assert parse_line(b'{"ready": true}') == {"ready": True}


def test_sessions_are_sent_changes_reported_and_a_dead_process_restarted(monkeypatch):
    monkeypatch.setattr(bfd_process, "RESTART_DELAY", 0.05)
    monkeypatch.setattr(bfd_process, "RESTART_DELAY_MAX", 0.05)
    changes: list[BfdChange] = []
    lock = threading.Lock()

    def on_change(change):
        with lock:
            changes.append(change)

    proc = BfdProcess(on_change, argv=[sys.executable, "-c", CHILD])
    proc.start()
    try:
        wait(lambda: proc.pid is not None)
        first_pid = proc.pid
        proc.set([BfdPeer(A("10.0.0.1"), A("10.0.0.2"), min_tx_ms=100, min_rx_ms=200)])
        wait(lambda: A("10.0.0.1") in proc.sessions())
        assert proc.sessions()[A("10.0.0.1")] == BfdSessionState("Up", 0, 600.0, 100.0)
        assert changes == [BfdChange(A("10.0.0.1"), "Init", "Up", 0, "Up", 600.0)]
        wait(lambda: proc.errors == 2)  # one per line sent (the empty set at start, then ours); the reader lives on

        proc.set([BfdPeer(A("10.0.0.99"), A("10.0.0.2"))])  # the child exits: it is started again
        wait(lambda: proc.restarts >= 1 and proc.pid is not None and proc.pid != first_pid)
        proc.set([BfdPeer(A("10.0.0.3"), A("10.0.0.2"))])
        wait(lambda: A("10.0.0.3") in proc.sessions())
        assert A("10.0.0.1") not in proc.sessions()
    finally:
        proc.stop()
    assert proc.pid is None
