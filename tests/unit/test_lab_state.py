"""The lab's state file and process identities: what `down` trusts to remove exactly what `up` made."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bgpnet.lab.processes import ProcessId, identify, is_running, stop
from bgpnet.lab.state import LabExists, LabState, StateStore, teardown


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_state_round_trips_through_json():
    state = LabState(tag="bgplababc123", workdir="/run/bgpnet-lab/bgplababc123", namespaces=["bgplababc123-seg"],
                     processes=[ProcessId(42, 1234, "[bgplababc123-seg] python3 -m integration.kube_api")],
                     description={"mode": "mesh", "nodes": []})
    assert LabState.from_json(state.to_json()) == state


def test_only_one_lab_per_state_dir(tmp_path):
    store = StateStore(tmp_path / "lab")
    store.claim(LabState(tag="bgplab1", workdir=""))
    with pytest.raises(LabExists, match="bgpnet lab down"):
        store.claim(LabState(tag="bgplab2", workdir=""))
    assert store.load().tag == "bgplab1"
    store.remove()
    assert store.load() is None
    assert not store.dir.exists()


def test_a_process_is_identified_by_pid_and_start_time():
    proc = sleeper()
    try:
        me = identify(proc.pid, "sleeper")
        assert is_running(me)
        # Same PID, different start time: a recycled PID belongs to someone else and must be left alone.
        assert not is_running(ProcessId(proc.pid, me.start_time + 1))
        assert stop([ProcessId(proc.pid, me.start_time + 1)]) == []
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_stop_terminates_the_recorded_processes_and_reaps_own_children():
    procs = [sleeper(), sleeper()]
    ids = [identify(p.pid) for p in procs]
    assert stop(ids) == ids
    assert not any(is_running(i) for i in ids)
    assert all(p.poll() is not None for p in procs)


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored():
    proc = subprocess.Popen([sys.executable, "-c",
                             "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                             "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    me = identify(proc.pid)
    assert stop([me], timeout=0.3) == [me]
    # It ignores SIGTERM, so only the SIGKILL can have ended it (stop() already reaped it, being its parent).
    assert not is_running(me)
    assert not os.path.exists(f"/proc/{proc.pid}")


def test_teardown_removes_the_workdir_and_record_but_never_foreign_namespaces_or_paths(tmp_path):
    store = StateStore(tmp_path / "lab")
    workdir = store.dir / "bgplabx1"
    state = LabState(tag="bgplabx1", workdir=str(workdir), namespaces=["someone-elses-netns"])
    store.claim(state)
    (workdir / "node1").mkdir(parents=True)
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    report = teardown(state, store)
    assert not workdir.exists() and store.load() is None
    assert report.deleted_namespaces == []
    assert report.leftovers == ["namespace someone-elses-netns (not the lab's tag bgplabx1: left alone)"]
    # A record pointing its workdir outside the state dir (corrupted or hand-edited) removes nothing there.
    store.claim(LabState(tag="bgplabx2", workdir=str(foreign)))
    teardown(store.load(), store)
    assert foreign.exists()


def test_recorder_writes_namespaces_and_processes_as_they_appear(tmp_path):
    class FakeGroup:  # the two attributes of NetnsGroup the recorder reads
        def __init__(self) -> None:
            self.namespaces, self.processes = [], []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    store = StateStore(tmp_path / "lab")
    state = LabState(tag="bgplabr", workdir="")
    store.claim(state)
    record = store.recorder(state)
    group = FakeGroup()
    group.namespaces.append(Named("bgplabr-seg"))
    record(group)
    assert store.load().namespaces == ["bgplabr-seg"]
    proc = sleeper()
    try:
        proc.args = ["ip", "netns", "exec", "bgplabr-seg", "/venv/bin/python3", "-m", "integration.kube_api"]
        group.processes.append(proc)
        record(group)
        record(group)  # idempotent: a process is recorded once
        recorded = store.load().processes
        assert [(p.pid, p.name) for p in recorded] == [(proc.pid, "[bgplabr-seg] python3 -m integration.kube_api")]
        assert is_running(recorded[0])
    finally:
        proc.kill()
        proc.wait()
    assert os.path.exists(store.path)
