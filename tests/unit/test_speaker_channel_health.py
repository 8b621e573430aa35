"""The speaker's channel to ExaBGP never dies silently: a stand-in ExaBGP whose helper never hands the pipes over
is restarted and reported to liveness; a line whose handling fails is logged and the next one is read; a
session reset is carried out through ExaBGP's teardown command."""

from __future__ import annotations

import ipaddress
import sys
import time

import pytest

from bgpnet.health import liveness
from bgpnet.lab.cluster import wait_for
from bgpnet.snapshot import AgentSnapshot, KubeStatus, RouteSyncStatus, SpeakerStatus
from bgpnet.speaker import speaker as speaker_module
from bgpnet.speaker.events import Malformed, RoutesReceived, SessionReset
from bgpnet.speaker.speaker import Speaker

SILENT_EXABGP = [sys.executable, "-c", "import time; time.sleep(120)"]  # never starts its API helper


def snapshot_with(loops) -> AgentSnapshot:
    return AgentSnapshot(node="n1", version="0", taken_at=0.0, started_at=0.0, own_node_known=True,
                         routes_programmed=True, startup_sync_pending=False, announced=(), peers=(),
                         routes=RouteSyncStatus(), kube=KubeStatus(), speaker=SpeakerStatus(), ipam=(),
                         loops=tuple(loops), reconciles=0, reconcile_failures=0, last_errors=())


def test_an_exabgp_that_never_hands_its_pipes_over_is_restarted_and_fails_liveness(tmp_path, monkeypatch):
    monkeypatch.setattr(speaker_module, "HANDOFF_DEADLINE", 0.3)
    monkeypatch.setattr(speaker_module, "CHANNEL_STALL_AFTER", 1.0)
    monkeypatch.setattr(speaker_module, "BACKOFF_FIRST", 0.05)
    speaker = Speaker(tmp_path, ipaddress.IPv4Address("10.0.0.1"), lambda event: None, exabgp_argv=SILENT_EXABGP)
    speaker.start()
    try:
        first = wait_for(lambda: speaker.pid, 10, what="the stand-in ExaBGP")
        wait_for(lambda: speaker.channel_restarts >= 2, 10, what="restarts for a missing hand-over")
        assert speaker.pid != first
        wait_for(lambda: not liveness(snapshot_with(speaker.loops())).ok, 10, what="liveness to fail")
        problems = liveness(snapshot_with(speaker.loops())).problems
        assert any("speaker-channel" in p for p in problems), problems
    finally:
        speaker.stop()
    assert all(loop.alive for loop in speaker.loops())


class FakeConnection:
    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines
        self.sent: list[str] = []

    def lines(self):
        yield from self._lines

    def send(self, commands) -> None:
        self.sent.extend(commands)


def test_a_line_whose_handling_fails_does_not_stop_the_reader(tmp_path, monkeypatch):
    events = []
    speaker = Speaker(tmp_path, ipaddress.IPv4Address("10.0.0.1"), events.append)
    proc = type("Proc", (), {"pid": 4242, "poll": lambda self: None})()
    speaker._proc = proc  # what the supervisor holds while ExaBGP runs
    original = speaker._handle

    def handle(item):
        if getattr(item, "kind", None) == "keepalive":
            raise RuntimeError("a bug")
        original(item)

    monkeypatch.setattr(speaker, "_handle", handle)
    lines = [b'{"relay": {"exabgp-pid": 4242}}', b'{"type": "keepalive"}', b'{"type": "keepalive"}', b"done"]
    speaker._serve(FakeConnection(lines))
    assert speaker.handler_errors == 2


def test_a_session_reset_is_carried_out_through_exabgp(tmp_path):
    events = []
    speaker = Speaker(tmp_path, ipaddress.IPv4Address("10.0.0.1"), events.append)
    conn = FakeConnection([])
    speaker._conn = conn
    peer = ipaddress.ip_address("172.20.1.1")
    reset = SessionReset(peer, Malformed("session-reset", "MP_REACH_NLRI twice"))
    speaker._handle(reset)
    speaker._handle(RoutesReceived(peer, (), ()))
    assert conn.sent == [f"neighbor 172.20.1.1 teardown {speaker_module.TEARDOWN_SUBCODE}"]
    assert events[0] == reset


@pytest.mark.parametrize("stall", [False, True])
def test_channel_loop_age_is_zero_while_a_channel_works(tmp_path, stall):
    speaker = Speaker(tmp_path, ipaddress.IPv4Address("10.0.0.1"), lambda event: None)
    if not stall:
        speaker._channel_since = None
    else:
        speaker._channel_since = time.monotonic() - 5
    (channel,) = [loop for loop in speaker.loops() if loop.name == "speaker-channel"]
    assert (channel.age_s >= 5) is stall
