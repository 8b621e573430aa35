"""The built-in IPAM store and allocator on a real directory: property-based allocate/release sequences never
produce a duplicate, always match a simple model, and report exhaustion exactly when the pool is full."""

from __future__ import annotations

import json
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni import allocator, jsonio, names
from cni.addresses import AF_INET, AF_INET6, format_ip, parse_cidr, parse_ip
from cni.errors import CniError
from cni.store import Store

# /29: 6 IPv4 hosts (.1-.6, network and broadcast skipped); /125: 6 IPv6 hosts (::1-::6, ::0 and ::7 skipped)
RANGES = [[parse_cidr("10.9.0.0/29")], [parse_cidr("fd00:9::/125")]]
CAPACITY = 6


def _owners(store: Store) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for res in store.reservations():
        out.setdefault((res.container_id, res.ifname), set()).add(res.ip)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 8)), max_size=40))
def test_allocate_release_sequences_never_duplicate_and_match_the_model(ops):
    with tempfile.TemporaryDirectory() as data_dir:
        model: dict[str, set[str]] = {}
        for is_add, n in ops:
            cid = f"c{n}"
            with Store(data_dir, "net") as store:
                if is_add and cid not in model:
                    if len(model) == CAPACITY:
                        with pytest.raises(CniError) as info:
                            allocator.allocate(store, RANGES, cid, "eth0")
                        assert info.value.code == 102
                        assert info.value.msg == "no IP addresses available in 10.9.0.0/29"
                    else:
                        got = allocator.allocate(store, RANGES, cid, "eth0")
                        assert sorted(f for f, _ in got) == [AF_INET, AF_INET6]
                        model[cid] = {format_ip(f, v) for f, v in got}
                elif not is_add:
                    released = store.release_owner(cid, "eth0")
                    assert set(released) == model.pop(cid, set())
                held = [res.ip for res in store.reservations()]
                assert len(held) == len(set(held)) == 2 * len(model)
                assert {k[0]: v for k, v in _owners(store).items()} == model
                for ip in held:
                    family, value = parse_ip(ip)
                    cidr = RANGES[0 if family == AF_INET else 1][0]
                    assert cidr.first_host() <= value <= cidr.last_host()


def test_round_robin_does_not_reuse_a_just_released_address(tmp_path):
    with Store(str(tmp_path), "net") as store:
        first = allocator.allocate(store, RANGES[:1], "a", "eth0")
        store.release_owner("a", "eth0")
        second = allocator.allocate(store, RANGES[:1], "b", "eth0")
    assert [format_ip(*a) for a in first + second] == ["10.9.0.1", "10.9.0.2"]


def test_round_robin_wraps_around_to_freed_addresses(tmp_path):
    with Store(str(tmp_path), "net") as store:
        for i in range(CAPACITY):
            allocator.allocate(store, RANGES[:1], f"c{i}", "eth0")
        store.release_owner("c2", "eth0")
        again = allocator.allocate(store, RANGES[:1], "new", "eth0")
    assert format_ip(*again[0]) == "10.9.0.3"


def test_exhausting_the_second_family_releases_the_first(tmp_path):
    ranges = [[parse_cidr("10.9.1.0/24")], [parse_cidr("fd00:9:1::/127")]]  # 2 IPv6 addresses
    with Store(str(tmp_path), "net") as store:
        allocator.allocate(store, ranges, "a", "eth0")
        allocator.allocate(store, ranges, "b", "eth0")
        with pytest.raises(CniError):
            allocator.allocate(store, ranges, "c", "eth0")
        assert len(store.reservations()) == 4
        assert allocator.exhausted_sets(store, ranges) == [ranges[1]]


def test_store_layout_is_one_file_per_address(tmp_path):
    with Store(str(tmp_path), "net") as store:
        allocator.allocate(store, RANGES, "abc", "eth0")
    files = sorted(p.name for p in (tmp_path / "net").iterdir())
    assert files == ["10.9.0.1", "fd00:9::1", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    assert (tmp_path / "net" / "10.9.0.1").read_text() == "abc\neth0\n"
    assert (tmp_path / "net" / "last_reserved_ip.0").read_text() == "10.9.0.1"


def test_a_crash_between_create_and_write_leaves_an_ownerless_file_nobody_else_gets(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "10.9.0.1").write_text("")  # what a SIGKILL right after O_EXCL leaves
    with Store(str(tmp_path), "net") as store:
        got = allocator.allocate(store, RANGES[:1], "a", "eth0")
        assert format_ip(*got[0]) == "10.9.0.2"
        assert [(r.ip, r.container_id) for r in store.reservations() if r.ip == "10.9.0.1"] == [("10.9.0.1", "")]


def test_a_torn_cursor_only_restarts_the_round_robin(tmp_path):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "last_reserved_ip.0").write_text("10.9.")
    with Store(str(tmp_path), "net") as store:
        assert format_ip(*allocator.allocate(store, RANGES[:1], "a", "eth0")[0]) == "10.9.0.1"


@pytest.mark.parametrize(("cidr", "first", "last"), [
    ("10.0.0.0/24", "10.0.0.1", "10.0.0.254"), ("10.0.0.0/31", "10.0.0.0", "10.0.0.1"),
    ("10.0.0.5/32", "10.0.0.5", "10.0.0.5"), ("fd00::/64", "fd00::1", "fd00::ffff:ffff:ffff:fffe"),
])
def test_host_ranges_skip_network_and_broadcast(cidr, first, last):
    c = parse_cidr(cidr)
    assert (format_ip(c.family, c.first_host()), format_ip(c.family, c.last_host())) == (first, last)


def test_host_veth_names_are_deterministic_short_and_distinct():
    name = names.host_veth_name("abc", "eth0")
    assert name == names.host_veth_name("abc", "eth0")
    assert len(name) == 14 and name.startswith("bgp") and int(name[3:], 16) >= 0
    assert name != names.host_veth_name("abc", "eth1") != names.host_veth_name("abd", "eth0")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@given(json_values)
def test_jsonio_round_trips_like_json(value):
    text = jsonio.dumps(value)
    assert json.loads(text) == value
    assert jsonio.loads(json.dumps(value)) == value


@pytest.mark.parametrize("bad", ["{", "[1,]", "{} x", "", "nul"])
def test_jsonio_rejects_what_json_rejects(bad):
    with pytest.raises(ValueError):
        jsonio.loads(bad)


# -- addresses the node holds ------------------------------------------------------------------------------------

def _held(*texts: str) -> frozenset[tuple[int, int]]:
    return frozenset(parse_ip(t) for t in texts)


def test_node_held_addresses_are_skipped_and_never_reserved(tmp_path):
    node = _held("10.9.0.1", "10.9.0.3", "fd00:9::1", "192.0.2.1")  # 192.0.2.1: outside the ranges
    with Store(str(tmp_path), "net") as store:
        got = [allocator.allocate(store, RANGES, f"c{i}", "eth0", node) for i in range(4)]
        assert [[format_ip(*a) for a in pair] for pair in got] == [
            ["10.9.0.2", "fd00:9::2"], ["10.9.0.4", "fd00:9::3"], ["10.9.0.5", "fd00:9::4"],
            ["10.9.0.6", "fd00:9::5"]]
        assert not {r.ip for r in store.reservations()} & {"10.9.0.1", "10.9.0.3", "fd00:9::1"}


def test_a_pod_cidr_of_only_node_addresses_is_exhausted_and_says_why(tmp_path):
    ranges = [[parse_cidr("172.31.250.0/30")]]  # hosts .1 and .2, both on the node
    with Store(str(tmp_path), "net") as store:
        with pytest.raises(CniError) as info:
            allocator.allocate(store, ranges, "c", "eth0", _held("172.31.250.2", "172.31.250.1", "172.31.250.3"))
        assert (info.value.code, info.value.msg, info.value.details) == (
            102, "no IP addresses available in 172.31.250.0/30",
            "skipped addresses the node holds: 172.31.250.1, 172.31.250.2")
        assert store.reservations() == []
        assert store.last_reserved(0) is None
        assert allocator.exhausted_sets(store, ranges, _held("172.31.250.1", "172.31.250.2")) == ranges
        assert allocator.exhausted_sets(store, ranges, _held("172.31.250.1")) == []


def test_a_reserved_node_address_is_not_counted_twice_by_status(tmp_path):
    """A reservation made before the node took the address (the node added it later) and the node's
    holding of it are one used address, not two."""
    ranges = [[parse_cidr("10.9.2.0/29")]]  # 6 hosts
    with Store(str(tmp_path), "net") as store:
        for i in range(5):
            allocator.allocate(store, ranges, f"c{i}", "eth0")
        assert allocator.exhausted_sets(store, ranges, _held("10.9.2.1")) == []
