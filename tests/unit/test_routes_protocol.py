"""register_protocol_name writes iproute2's rt_protos.d entry once, atomically, and rewrites a wrong one."""

from __future__ import annotations

from bgpnet.routes import RTPROT_BGPNET, register_protocol_name


def test_writes_the_entry_then_is_idempotent(tmp_path):
    path = tmp_path / "rt_protos.d" / "bgpnet.conf"
    assert register_protocol_name(path) is True
    assert path.read_text() == "179 bgpnet\n"
    mtime = path.stat().st_mtime_ns
    assert register_protocol_name(path) is False
    assert path.stat().st_mtime_ns == mtime
    assert RTPROT_BGPNET == 179


def test_rewrites_a_wrong_entry_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "bgpnet.conf"
    path.write_text("180 bgpnet\n")
    assert register_protocol_name(path) is True
    assert path.read_text() == "179 bgpnet\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bgpnet.conf"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
