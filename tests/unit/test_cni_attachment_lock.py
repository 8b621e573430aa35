"""The per-container attachment lock: held by one command at a time even while holders unlink it, present on
disk only while held, never mistaken for a reservation, and GC never acts on an attachment whose lock is
held."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cni import main
from cni.attachment_lock import AttachmentLock, lock_path, sweep_leftovers
from cni.errors import CniError
from cni.store import Store

ROOT = Path(__file__).resolve().parents[2]


def test_the_lock_file_exists_only_while_held(tmp_path):
    store_dir = str(tmp_path / "net")
    with AttachmentLock(store_dir, "c1") as lock:
        assert Path(lock.path).exists()
        assert lock.path == f"{store_dir}/.attach.c1"
        with Store(str(tmp_path), "net") as store:
            assert store.reservations() == []  # a dot file is not a reservation
    assert sorted(p.name for p in Path(store_dir).iterdir()) == ["lock"]


def test_long_container_ids_fit_a_file_name(tmp_path):
    assert Path(lock_path(str(tmp_path), "a" * 256)).name == ".attach." + "a" * 240
    with AttachmentLock(str(tmp_path), "a" * 256):
        pass


def test_a_second_command_waits_and_then_gives_up_with_try_again_later(tmp_path):
    with AttachmentLock(str(tmp_path), "c1"):
        with pytest.raises(CniError) as info:
            with AttachmentLock(str(tmp_path), "c1", timeout=0.2):
                pass
        assert not AttachmentLock(str(tmp_path), "c1").try_acquire()
        with AttachmentLock(str(tmp_path), "other", timeout=0.2):  # other containers are not held up
            pass
    assert (info.value.code, info.value.msg) == (
        11, f"container c1 busy: another ADD, DEL or CHECK of it held {tmp_path}/.attach.c1 for 0.2 s")


_HOLDER = """
import posix, sys
from cni.attachment_lock import AttachmentLock
store_dir, marker = sys.argv[1], sys.argv[2]
for _ in range(int(sys.argv[3])):
    with AttachmentLock(store_dir, "same"):
        fd = posix.open(marker, posix.O_CREAT | posix.O_EXCL | posix.O_WRONLY)  # fails if another holder is in
        posix.close(fd)
        posix.sched_yield()
        posix.unlink(marker)
"""


def test_holders_that_unlink_the_file_never_overlap(tmp_path):
    """Eight processes take and drop one container's lock 300 times each. Every drop unlinks the file, so
    waiters keep waking up on unlinked files; if two ever held it at once, the O_EXCL marker would fail."""
    procs = [subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path / "net"), str(tmp_path / "inside"),
                               "300"], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, errors
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == []


def test_sweep_removes_leftovers_of_killed_plugins_but_not_held_locks(tmp_path):
    store_dir = tmp_path / "net"
    store_dir.mkdir()
    (store_dir / ".attach.killed").write_text("")  # what a SIGKILLed holder leaves
    with AttachmentLock(str(store_dir), "busy"):
        assert sweep_leftovers(str(store_dir)) == ["killed"]
        assert sorted(p.name for p in store_dir.iterdir()) == [".attach.busy"]


def test_gc_leaves_an_attachment_whose_lock_is_held_to_its_command(tmp_path):
    with Store(str(tmp_path), "podnet") as store:
        store.reserve("10.244.1.5", "adding", "eth0")
        store.reserve("10.244.1.6", "stale", "eth0")
    conf = {"cniVersion": "1.1.0", "name": "podnet", "type": "bgpnet-cni", "podCIDRs": ["10.244.1.0/24"],
            "dataDir": str(tmp_path), "cni.dev/valid-attachments": []}
    out = io.StringIO()
    with AttachmentLock(str(tmp_path / "podnet"), "adding"):  # an ADD between reservation and wiring
        status = main.main(environ={"CNI_COMMAND": "GC", "CNI_PATH": "/usr/lib/cni"},
                           stdin=io.BytesIO(json.dumps(conf).encode()), stdout=out, stderr=io.StringIO())
    assert (status, out.getvalue()) == (0, "")
    with Store(str(tmp_path), "podnet") as store:
        assert [(r.ip, r.container_id) for r in store.reservations()] == [("10.244.1.5", "adding")]
