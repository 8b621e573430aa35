"""Hostile runtime input refused before it touches the host: the node's own network namespace as CNI_NETNS,
pod CIDRs in address space no pod can use, and configs too large or too deeply nested to parse safely. Each
is a table of inputs -> exact spec code and message, driven through the dispatcher in-process; the data dir
must stay absent (nothing was reserved, locked or created)."""

from __future__ import annotations

import io
import json
import os

import pytest

from cni import main, netns
from cni.errors import CniError

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/run/netns/pod", "CNI_IFNAME": "eth0",
       "CNI_PATH": "/usr/lib/cni"}


def conf(data_dir, **changes):
    doc = {"cniVersion": "1.1.0", "name": "podnet", "type": "bgpnet-cni", "podCIDRs": ["10.244.1.0/24"],
           "mtu": 1500, "dataDir": str(data_dir)}
    doc.update(changes)
    return doc


def run(env, stdin: bytes):
    out, err = io.StringIO(), io.StringIO()
    status = main.main(environ=env, stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return status, json.loads(out.getvalue()) if out.getvalue() else None


# -- the node's own network namespace -------------------------------------------------------------------------

OWN_NETNS_PATHS = ["/proc/self/ns/net", "/proc/thread-self/ns/net", f"/proc/{os.getpid()}/ns/net"]


@pytest.mark.parametrize("command", ["ADD", "CHECK"])
@pytest.mark.parametrize("path", OWN_NETNS_PATHS)
def test_own_netns_is_refused_as_an_invalid_cni_netns_whatever_path_names_it(tmp_path, command, path):
    doc = conf(tmp_path / "data", prevResult={"cniVersion": "1.1.0", "interfaces": [
        {"name": "eth0", "mac": "0a:58:0a:f4:01:05", "sandbox": path}],
        "ips": [{"address": "10.244.1.5/32", "interface": 0}]})
    status, out = run({**ENV, "CNI_COMMAND": command, "CNI_NETNS": path}, json.dumps(doc).encode())
    assert (status, out["code"], out["msg"]) == (
        1, 4, f"invalid CNI_NETNS {path!r}: is the node's own network namespace (the plugin's), not a container's")
    assert not (tmp_path / "data").exists()


def test_namespace_identity_is_device_and_inode_not_the_path():
    own = os.stat("/proc/self/ns/net")
    assert netns.is_same_namespace(own, os.stat(f"/proc/{os.getpid()}/ns/net"))
    assert not netns.is_same_namespace(own, os.stat("/proc/self/ns/mnt"))  # same nsfs device, other inode


def test_another_kind_of_namespace_is_refused_for_what_it_is():
    with pytest.raises(CniError) as info:
        netns.open_netns("/proc/self/ns/uts")
    assert (info.value.code, info.value.msg) == (4, "invalid CNI_NETNS '/proc/self/ns/uts': not a network namespace")


# -- pod CIDRs in special-purpose space ------------------------------------------------------------------------

SPECIAL = [
    ("127.0.0.0/8", "loopback space 127.0.0.0/8"),
    ("127.0.0.1/32", "loopback space 127.0.0.0/8"),
    ("0.0.0.0/8", "'this network' space 0.0.0.0/8"),
    ("0.0.0.0/0", "'this network' space 0.0.0.0/8"),
    ("169.254.0.0/16", "link-local space 169.254.0.0/16"),
    ("169.254.1.0/24", "link-local space 169.254.0.0/16"),
    ("224.0.0.0/4", "multicast space 224.0.0.0/4"),
    ("239.1.0.0/16", "multicast space 224.0.0.0/4"),
    ("240.0.0.0/4", "reserved and broadcast space 240.0.0.0/4"),
    ("255.255.255.255/32", "reserved and broadcast space 240.0.0.0/4"),
    ("::/128", "the unspecified address ::/128"),
    ("::/0", "the unspecified address ::/128"),
    ("::1/128", "the loopback address ::1/128"),
    ("::ffff:0.0.0.0/96", "IPv4-mapped space ::ffff:0:0/96"),
    ("fe80::/10", "link-local space fe80::/10"),
    ("fe80::/64", "link-local space fe80::/10"),
    ("ff00::/8", "multicast space ff00::/8"),
    ("ff02::/16", "multicast space ff00::/8"),
]


@pytest.mark.parametrize(("cidr", "space"), SPECIAL, ids=[c for c, _ in SPECIAL])
def test_pod_cidr_in_special_space_is_an_invalid_network_config(tmp_path, cidr, space):
    status, out = run(ENV, json.dumps(conf(tmp_path / "data", podCIDRs=["10.244.1.0/24", cidr])).encode())
    assert (status, out["code"], out["msg"]) == (
        1, 7, f"invalid network config: \"podCIDRs\" contains {cidr!r}, which overlaps {space}: no pod address "
              "can come from there")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "100.64.0.0/10", "192.168.0.0/16", "1.0.0.0/8", "223.0.0.0/8",
                                  "fd00::/8", "2001:db8::/32", "fec0::/10", "::2/127"])
def test_ordinary_unicast_pod_cidrs_pass(tmp_path, cidr):
    """A config that passes the CIDR checks goes on to the next check (here: a bad mtu), proving the CIDR
    itself was accepted."""
    status, out = run(ENV, json.dumps(conf(tmp_path / "data", podCIDRs=[cidr], mtu="x")).encode())
    assert (out["code"], out["msg"].split('"')[1]) == (7, "mtu")


# -- JSON too large or too deep --------------------------------------------------------------------------------

def _nested(depth: int) -> str:
    """A config whose deepest value sits `depth` levels down (the top-level object is level 1)."""
    return json.dumps(conf("/nonexistent", mtu="x", x="@")).replace('"@"', "[" * (depth - 1) + "]" * (depth - 1))


def _exactly(size: int) -> bytes:
    """A config (with a bad mtu) padded with whitespace to exactly `size` bytes."""
    data = json.dumps(conf("/x", mtu="x")).encode()
    return data[:-1] + b" " * (size - len(data)) + b"}"


TOO_BIG_OR_DEEP = [
    ("a million open brackets", b"[" * 1_000_000, "nested deeper than 64 levels"),
    ("a deep chain of objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper than 64 levels"),
    ("65 levels", _nested(65).encode(), "nested deeper than 64 levels"),
    ("deep after an escaped backslash", b'{"s": "\\\\", "x": ' + b"[" * 70 + b"]" * 70 + b"}",
     "nested deeper than 64 levels"),
    ("one byte over 1 MiB", _exactly((1 << 20) + 1), "larger than 1048576 bytes"),
    ("100 MiB", b" " * (100 << 20), "larger than 1048576 bytes"),
]


@pytest.mark.parametrize(("data", "problem"), [c[1:] for c in TOO_BIG_OR_DEEP], ids=[c[0] for c in TOO_BIG_OR_DEEP])
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_too_large_or_too_deep_config_is_a_decode_failure(tmp_path, command, data, problem):
    status, out = run({**ENV, "CNI_COMMAND": command}, data)
    assert (status, out) == (1, {"cniVersion": "1.1.0", "code": 6,
                                 "msg": f"failed to decode network config from stdin: {problem}"})


def test_only_one_byte_past_the_limit_is_read():
    stream = io.BytesIO(b" " * (10 << 20))
    main.main(environ=ENV, stdin=stream, stdout=io.StringIO(), stderr=io.StringIO())
    assert stream.tell() == (1 << 20) + 1


ACCEPTED = [
    ("64 levels", _nested(64).encode()),
    ("brackets inside a string", json.dumps(conf("/x", mtu="x", s="[" * 5000 + "{" * 5000)).encode()),
    ("brackets after escaped quotes", json.dumps(conf("/x", mtu="x", s='\\"' + "[" * 5000)).encode()),
    ("many shallow brackets", json.dumps(conf("/x", mtu="x", routes=[{"dst": "0.0.0.0/0"}] * 5000)).encode()),
    ("exactly 1 MiB", _exactly(1 << 20)),
]


@pytest.mark.parametrize("data", [d for _, d in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_large_shallow_or_string_heavy_configs_are_parsed(data):
    """They reach the config checks: the bad mtu is what gets reported."""
    status, out = run(ENV, data)
    assert (out["code"], out["msg"]) == (7, 'invalid network config: "mtu" must be an integer between 576 and 65535')
