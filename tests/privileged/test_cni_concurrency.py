"""Many plugins at once, and plugins killed mid-ADD: the IPAM store never hands out an address twice, DEL
empties it, and GC reclaims what killed plugins held."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest
from test_cni_support import Node, netconf, plugin_path

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


@pytest.fixture
def node(netns_group, tmp_path):
    return Node(netns_group, tmp_path)

PARALLEL = 200


def test_200_parallel_adds_get_distinct_addresses_and_del_empties_the_store(node):
    conf = netconf(node, cidrs=["10.245.0.0/24"])
    pods = [node.pod(f"q{i}") for i in range(PARALLEL)]
    procs = [node.popen(plugin_path(), node.env("ADD", f"par{i}", pod.path), conf) for i, pod in enumerate(pods)]
    results = []
    for proc in procs:
        out = proc.stdout.read()
        proc.wait(timeout=300)
        assert proc.returncode == 0, (out, proc.stderr.read())
        results.append(out)
    import json

    addresses = [json.loads(out)["ips"][0]["address"] for out in results]
    assert len(set(addresses)) == PARALLEL
    assert len(node.reservations("podnet")) == PARALLEL
    assert len(node.host_veths()) == PARALLEL
    procs = [node.popen(plugin_path(), node.env("DEL", f"par{i}", pod.path), conf) for i, pod in enumerate(pods)]
    for proc in procs:
        proc.stdout.read()
        proc.wait(timeout=300)
        assert proc.returncode == 0, proc.stderr.read()
    assert node.reservations("podnet") == {}
    assert node.host_veths() == []


def test_sigkill_mid_add_never_duplicates_and_gc_reclaims(node):
    """Kill ADDs at delays spread over a whole ADD's duration; completed ones keep distinct addresses,
    and GC with the completed ones as valid attachments returns the store and the node to exactly them."""
    conf = netconf(node, cidrs=["10.245.1.0/24"])
    rng = random.Random(1234)
    completed: dict[str, str] = {}  # container ID -> address
    killed_holding = 0
    for i in range(60):
        pod = node.pod(f"k{i}")
        proc = node.popen(plugin_path(), node.env("ADD", f"kill{i}", pod.path), conf)
        time.sleep(rng.uniform(0, 0.04))
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out = proc.stdout.read()
        proc.wait(timeout=60)
        if proc.returncode == 0:
            import json

            completed[f"kill{i}"] = json.loads(out)["ips"][0]["address"].split("/")[0]
        else:
            owners = [content.split("\n")[0] for content in node.reservations("podnet").values()]
            killed_holding += f"kill{i}" in owners
        held = node.reservations("podnet")
        # Invariant at every step: every completed attachment still owns its own address.
        for cid, address in completed.items():
            assert held[address].split("\n")[0] == cid
        if killed_holding >= 3 and len(completed) >= 3:
            break
    assert killed_holding >= 1, "no kill landed between reservation and the end of ADD"
    valid = [{"containerID": cid, "ifname": "eth0"} for cid in completed]
    code, out, err = node.cni("GC", dict(conf, **{"cni.dev/valid-attachments": valid}), ifname="")
    assert (code, out) == (0, None), err
    assert set(node.reservations("podnet")) == set(completed.values())
    assert len(node.host_veths()) == len(completed)
    # The reclaimed addresses are handed out again, still without duplicates.
    fresh = node.add(conf, "after-gc", node.pod("kfresh"))
    assert fresh["ips"][0]["address"].split("/")[0] not in completed.values()
