"""The bgpnet-cni dispatcher driven in-process: injected environment, stdin and stdout. Bad input is a table
of exact codes and messages; none of it may touch the host (the data dir stays absent)."""

from __future__ import annotations

import io
import json

import pytest

from cni import commands, main, request
from cni.errors import CniError

GOOD_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc123", "CNI_NETNS": "/run/netns/pod",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/usr/lib/cni"}


def good_conf(data_dir, **changes):
    conf = {"cniVersion": "1.1.0", "name": "podnet", "type": "bgpnet-cni", "podCIDRs": ["10.244.1.0/24"],
            "mtu": 1500, "dataDir": str(data_dir)}
    conf.update(changes)
    return {k: v for k, v in conf.items() if v is not None}


def run(env, stdin):
    out, err = io.StringIO(), io.StringIO()
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    code = main.main(environ=env, stdin=io.BytesIO(data), stdout=out, stderr=err)
    return code, (json.loads(out.getvalue()) if out.getvalue() else None), err.getvalue()


BAD_ENV = [
    ({"CNI_COMMAND": None}, 4, "required environment variable CNI_COMMAND is missing"),
    ({"CNI_COMMAND": "FOO"}, 4, "invalid CNI_COMMAND 'FOO': must be one of ADD, DEL, CHECK, STATUS, GC, VERSION"),
    ({"CNI_NETNS": None}, 4, "required environment variables missing: CNI_NETNS"),
    ({"CNI_PATH": None, "CNI_IFNAME": None}, 4, "required environment variables missing: CNI_IFNAME, CNI_PATH"),
    ({"CNI_CONTAINERID": "../etc"}, 4, "invalid CNI_CONTAINERID '../etc': must start with a letter or digit"),
    ({"CNI_CONTAINERID": "a/b"}, 4,
     "invalid CNI_CONTAINERID 'a/b': may only contain letters, digits, '_', '.' and '-'"),
    ({"CNI_CONTAINERID": "a" * 257}, 4, f"invalid CNI_CONTAINERID '{'a' * 257}': longer than 256 characters"),
    ({"CNI_IFNAME": "eth0/x"}, 4,
     "invalid CNI_IFNAME 'eth0/x': may only contain letters, digits, '_', '.', '-' and '@'"),
    ({"CNI_IFNAME": "a" * 16}, 4, f"invalid CNI_IFNAME '{'a' * 16}': longer than 15 characters"),
    ({"CNI_IFNAME": ".."}, 4, "invalid CNI_IFNAME '..': must not be '.' or '..'"),
    ({"CNI_NETNS": "run/netns/pod"}, 4, "invalid CNI_NETNS 'run/netns/pod': must be an absolute path"),
    ({"CNI_NETNS": "/run/netns/../../etc/passwd"}, 4,
     "invalid CNI_NETNS '/run/netns/../../etc/passwd': must not contain '..'"),
    ({"CNI_NETNS": "/run/netns/a b"}, 4,
     "invalid CNI_NETNS '/run/netns/a b': contains characters outside [A-Za-z0-9_.-/@:+=,~]"),
    ({"CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME"}, 4,
     "invalid CNI_ARGS 'IgnoreUnknown=1;K8S_POD_NAME': bad pair 'K8S_POD_NAME' (want KEY=VALUE)"),
]


@pytest.mark.parametrize(("changes", "code", "msg"), BAD_ENV, ids=[m for _, _, m in BAD_ENV])
def test_bad_environment_is_rejected_with_exact_code_and_message(tmp_path, changes, code, msg):
    env = {k: v for k, v in {**GOOD_ENV, **changes}.items() if v is not None}
    status, out, err = run(env, good_conf(tmp_path / "data"))
    assert status == 1
    assert (out["code"], out["msg"]) == (code, msg)
    assert out["cniVersion"] == "1.1.0"
    assert msg in err  # the human log line on stderr
    assert not (tmp_path / "data").exists()


BAD_CONF = [
    (b"{not json", 6, "failed to decode network config from stdin"),
    (b"\xff\xfe", 6, "failed to decode network config from stdin"),
    (b"[1, 2]", 6, "failed to decode network config from stdin"),
    ({"cniVersion": "0.3.1"}, 1, "incompatible CNI versions"),
    ({"cniVersion": None}, 7, 'invalid network config: "cniVersion" is required and must be a string'),
    ({"name": "../x"}, 7, 'invalid network config: "name" must start with a letter or digit'),
    ({"name": None}, 7, 'invalid network config: "name" must be a non-empty string'),
    ({"podCIDRs": None}, 7, 'invalid network config: "podCIDRs" is required (a non-empty list of CIDRs) unless '
                            '"ipam" names an IPAM plugin'),
    ({"podCIDRs": ["10.0.0.1/24"]}, 7,
     "invalid network config: \"podCIDRs\" contains invalid CIDR '10.0.0.1/24': host bits set"),
    ({"podCIDRs": ["10.0.0.0/33"]}, 7,
     "invalid network config: \"podCIDRs\" contains invalid CIDR '10.0.0.0/33': bad prefix length"),
    ({"podCIDRs": ["10.0.0.0/16", "10.0.1.0/24"]}, 7,
     "invalid network config: \"podCIDRs\" contains overlapping ranges '10.0.0.0/16' and '10.0.1.0/24'"),
    ({"podCIDRs": ["nonsense/8"]}, 7, "invalid network config: \"podCIDRs\" contains invalid IP address 'nonsense'"),
    ({"mtu": "1500"}, 7, 'invalid network config: "mtu" must be an integer between 576 and 65535'),
    ({"mtu": True}, 7, 'invalid network config: "mtu" must be an integer between 576 and 65535'),
    ({"mtu": 1000, "podCIDRs": ["fd00::/64"]}, 7,
     'invalid network config: "mtu" must be an integer between 1280 and 65535'),
    ({"dataDir": "var/lib"}, 7, 'invalid network config: "dataDir" must be an absolute path'),
    ({"dataDir": "/var/lib/cni/../../etc"}, 7, 'invalid network config: "dataDir" must not contain \'..\''),
    ({"logFile": "log.txt"}, 7, 'invalid network config: "logFile" must be an absolute path'),
    ({"ipMasq": True}, 2, 'unsupported field "ipMasq": bgpnet routes pod addresses and never masquerades'),
    ({"podCIDRs": None, "ipam": {"type": "../../bin/sh"}}, 7,
     'invalid network config: "ipam.type" must start with a letter or digit'),
    ({"ipam": {"type": "host-local"}}, 7, 'invalid network config: "podCIDRs" and "ipam" are mutually exclusive'),
    ({"runtimeConfig": {"Mac": "01:00:5e:00:00:01"}}, 7,
     'invalid network config: "runtimeConfig.mac" must be a unicast MAC address like 0a:58:0a:f4:01:05'),
    ({"prevResult": []}, 7, 'invalid network config: "prevResult" must be an object'),
]


@pytest.mark.parametrize(("changes", "code", "msg"), BAD_CONF, ids=[m for _, _, m in BAD_CONF])
def test_bad_config_is_rejected_with_exact_code_and_message(tmp_path, changes, code, msg):
    stdin = changes if isinstance(changes, bytes) else good_conf(tmp_path / "data", **changes)
    status, out, _ = run(GOOD_ENV, stdin)
    assert status == 1
    assert (out["code"], out["msg"]) == (code, msg)
    assert not (tmp_path / "data").exists()


def test_incompatible_version_names_both_sides(tmp_path):
    _, out, _ = run(GOOD_ENV, good_conf(tmp_path, cniVersion="0.3.1"))
    assert out["details"] == 'config is "0.3.1", plugin supports [\'0.4.0\', \'1.0.0\', \'1.1.0\']'


@pytest.mark.parametrize("command", ["STATUS", "GC"])
def test_status_and_gc_need_a_1_1_0_config(tmp_path, command):
    status, out, _ = run({"CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni"},
                         good_conf(tmp_path, cniVersion="1.0.0"))
    assert (status, out["code"], out["msg"], out["cniVersion"]) == (
        1, 1, f"config version does not allow {command}", "1.0.0")


def test_version_needs_no_config():
    status, out, _ = run({"CNI_COMMAND": "VERSION"}, b"")
    assert (status, out) == (0, {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]})


def test_gc_attachments_must_be_valid(tmp_path):
    conf = good_conf(tmp_path, **{"cni.dev/valid-attachments": [{"containerID": "../x", "ifname": "eth0"}]})
    _, out, _ = run({"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, conf)
    assert (out["code"], out["msg"]) == (
        7, "invalid network config: \"cni.dev/valid-attachments\" has an invalid entry "
           "{'containerID': '../x', 'ifname': 'eth0'}")


# -- routing to the commands (fakes at the commands seam) ----------------------------------------------------

@pytest.fixture
def recorded(monkeypatch):
    calls = []

    def fake(name, result=None):
        def command(inv, conf, ctx):
            calls.append((name, inv, conf))
            return result
        return command

    monkeypatch.setattr(commands, "add", fake("ADD", {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/32"}]}))
    for name, attr in (("DEL", "delete"), ("CHECK", "check"), ("STATUS", "status"), ("GC", "gc")):
        monkeypatch.setattr(commands, attr, fake(name))
    return calls


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
def test_each_command_reaches_its_handler(tmp_path, recorded, command):
    status, out, _ = run({**GOOD_ENV, "CNI_COMMAND": command}, good_conf(tmp_path))
    assert status == 0
    assert [c[0] for c in recorded] == [command]
    assert out == ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/32"}]} if command == "ADD" else None)


def test_cni_args_in_any_order_and_runtime_config_any_case(tmp_path, recorded):
    env = {**GOOD_ENV, "CNI_ARGS": "K8S_POD_UID=u1;IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default"}
    run(env, good_conf(tmp_path, runtimeConfig={"MAC": "0A:58:0A:F4:01:05", "portMappings": []}))
    _, inv, conf = recorded[0]
    assert inv.args == {"K8S_POD_UID": "u1", "IgnoreUnknown": "1", "K8S_POD_NAME": "web",
                        "K8S_POD_NAMESPACE": "default"}
    assert conf.runtime_config["mac"] == "0A:58:0A:F4:01:05"
    assert "portmappings" in conf.runtime_config


def test_del_accepts_an_empty_netns(tmp_path, recorded):
    status, _, _ = run({**GOOD_ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}, good_conf(tmp_path))
    assert status == 0 and recorded[0][1].netns == ""


def test_command_errors_and_crashes_become_spec_errors(tmp_path, monkeypatch):
    def busy(inv, conf, ctx):
        raise CniError(11, "IPAM store busy", "locked")

    monkeypatch.setattr(commands, "add", busy)
    status, out, _ = run(GOOD_ENV, good_conf(tmp_path, cniVersion="1.0.0"))
    assert (status, out) == (1, {"cniVersion": "1.0.0", "code": 11, "msg": "IPAM store busy", "details": "locked"})

    def crash(inv, conf, ctx):
        raise KeyError("boom")

    monkeypatch.setattr(commands, "add", crash)
    status, out, err = run(GOOD_ENV, good_conf(tmp_path))
    assert (status, out["code"], out["msg"]) == (1, 199, "internal error: KeyError('boom')")
    assert "Traceback" in err


def test_ranges_group_cidrs_by_family_ipv4_first():
    conf = request.parse_netconf({"cniVersion": "1.0.0", "name": "n", "podCIDRs": [
        "fd00::/64", "10.1.0.0/24", "10.2.0.0/24"]}, "ADD")
    assert [[str(c) for c in ranges] for ranges in conf.ranges] == [["10.1.0.0/24", "10.2.0.0/24"], ["fd00::/64"]]
