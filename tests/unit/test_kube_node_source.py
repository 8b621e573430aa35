"""NodeSource against the stand-in over HTTP with the real client: list, watch, 410, outages, bad nodes."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from bgpnet.kube.client import api_client
from bgpnet.kube.node_source import NodeSource
from bgpnet.kube.watch_stream import Backoff
from integration.kube_api import make_node

DEADLINE = 20.0  # generous: polls end as soon as the condition holds


def wait_for(predicate, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def node(name, n, **kw):
    return make_node(name, [f"10.0.0.{n}"], [f"10.244.{n}.0/24"], **kw)




class Running:
    """A NodeSource running in a thread, recording every snapshot handed to on_change."""

    def __init__(self, standin, tmp_path, **options):
        self.changes = []
        connection = api_client(standin.write_kubeconfig(str(tmp_path / "kubeconfig")))
        options = {"watch_timeout": 2, "resync_period": 300, "backoff_initial": 0.05, "backoff_max": 0.2,
                   "request_timeout": 5, **options}
        self.source = NodeSource(connection, self.changes.append, **options)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.source.run, args=(self.stop,))
        self.thread.start()

    def names(self):
        return sorted(self.source.snapshot())

    def close(self):
        self.stop.set()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "NodeSource.run must return promptly once stop is set"


@pytest.fixture
def running(standin, tmp_path):
    started = []

    def start(**options):
        r = Running(standin, tmp_path, **options)
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


def test_initial_list_is_one_change_with_every_node(standin, running):
    for n in range(1, 4):
        standin.create_node(node(f"n{n}", n))
    r = running()
    wait_for(lambda: r.changes, "the initial snapshot")
    assert sorted(r.changes[0]) == ["n1", "n2", "n3"]
    assert r.changes[0]["n2"].pod_cidrs == (ipaddress.ip_network("10.244.2.0/24"),)
    stats = r.source.stats
    assert stats.relists == 1 and stats.api_reachable and stats.last_sync_time is not None
    with pytest.raises(TypeError):
        r.changes[0]["x"] = None  # snapshots are immutable


def test_empty_cluster_still_reports_the_initial_state(standin, running):
    r = running()
    wait_for(lambda: r.changes, "the initial (empty) snapshot")
    assert dict(r.changes[0]) == {}


def test_add_modify_delete_arrive(standin, running):
    standin.create_node(node("n1", 1))
    r = running()
    wait_for(lambda: r.names() == ["n1"], "initial list")
    standin.create_node(node("n2", 2))
    wait_for(lambda: r.names() == ["n1", "n2"], "ADDED")
    standin.patch_node("n2", {"metadata": {"labels": {"bgpnet.io/asn": "65002"}}})
    wait_for(lambda: r.source.snapshot()["n2"].label("bgpnet.io/asn") == "65002", "MODIFIED")
    standin.delete_node("n1")
    wait_for(lambda: r.names() == ["n2"], "DELETED")
    assert r.changes[-1] == r.source.snapshot()
    events = r.source.stats.events
    assert (events["ADDED"], events["MODIFIED"], events["DELETED"]) == (1, 1, 1)


def test_status_heartbeat_that_changes_nothing_does_not_call_on_change(standin, running):
    standin.create_node(node("n1", 1))
    r = running()
    wait_for(lambda: r.changes, "initial list")
    heartbeat = {"type": "Ready", "lastHeartbeatTime": "2030-01-01T00:00:00Z"}
    standin.patch_node("n1", {"status": {"conditions": [heartbeat]}})
    wait_for(lambda: r.source.stats.events.get("MODIFIED") == 1, "the heartbeat MODIFIED event")
    standin.create_node(node("n2", 2))  # a real change after it, to know the heartbeat was fully processed
    wait_for(lambda: len(r.source.snapshot()) == 2, "n2")
    assert len(r.changes) == 2  # initial list + n2; the heartbeat was absorbed


def test_bookmarks_advance_the_resource_version(standin, running):
    standin.create_node(node("n1", 1))
    r = running()
    wait_for(lambda: r.changes, "initial list")
    # A Secret write bumps the cluster-wide resourceVersion without any Node event: only bookmarks carry it.
    standin.put_secret("kube-system", "bgp", {"password": "x"})
    target = str(standin.resource_version)
    wait_for(lambda: r.source.stats.resource_version == target, "a bookmark with the new resourceVersion")
    assert r.source.stats.events["BOOKMARK"] >= 1
    assert r.source.stats.relists == 1


def test_compaction_during_an_outage_gives_410_and_a_relist_with_the_right_state(standin, running):
    for n in range(1, 4):
        standin.create_node(node(f"n{n}", n))
    r = running()
    wait_for(lambda: r.names() == ["n1", "n2", "n3"], "initial list")
    standin.stop()
    wait_for(lambda: not r.source.stats.api_reachable, "the outage to be noticed")
    standin.delete_node("n1")
    standin.create_node(node("n4", 4))
    standin.patch_node("n2", {"metadata": {"labels": {"moved": "yes"}}})
    standin.compact()
    standin.start()
    wait_for(lambda: r.source.stats.relists == 2, "the re-list after 410")
    assert r.names() == ["n2", "n3", "n4"]
    assert r.source.snapshot()["n2"].label("moved") == "yes"
    assert r.source.stats.events["ERROR"] >= 1
    assert r.source.stats.api_reachable


def test_outage_keeps_last_state_and_resumes_with_changes_made_meanwhile(standin, running):
    standin.create_node(node("n1", 1))
    r = running()
    wait_for(lambda: r.names() == ["n1"], "initial list")
    standin.stop()
    wait_for(lambda: r.source.stats.api_errors >= 3, "several failed retries")
    assert not r.source.stats.api_reachable
    assert r.names() == ["n1"]  # last known state kept
    standin.create_node(node("n2", 2))
    standin.start()
    wait_for(lambda: r.names() == ["n1", "n2"], "the change made during the outage")
    assert r.source.stats.api_reachable
    assert r.source.stats.relists == 1  # the watch resumed from its resourceVersion: the server replayed


def test_backoff_doubles_up_to_the_cap():
    backoff = Backoff(0.5, 30.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5


def test_periodic_resync_relists(standin, running):
    standin.create_node(node("n1", 1))
    r = running(resync_period=0.5, watch_timeout=1)
    wait_for(lambda: r.source.stats.relists >= 3, "periodic re-lists")
    assert len(r.changes) == 1  # re-lists that find nothing new call no one


def test_malformed_node_is_skipped_while_others_flow(standin, running):
    standin.create_node(node("good", 1))
    standin.create_node(make_node("bad", [], ["10.244.9.0/24"]))  # no InternalIP
    r = running()
    wait_for(lambda: r.changes, "initial list")
    assert r.names() == ["good"]
    assert dict(r.source.stats.bad_nodes) == {"bad": "no InternalIP in status.addresses"}
    standin.create_node(node("later", 3))
    wait_for(lambda: r.names() == ["good", "later"], "a good node after the bad one")
    # A known node going bad keeps its last good state ...
    standin.patch_node("good", {"status": {"addresses": [{"type": "Hostname", "address": "good"}]}},
                       strategic=False)
    wait_for(lambda: "good" in r.source.stats.bad_nodes, "the node turning bad")
    assert r.source.snapshot()["good"].internal_ips == (ipaddress.ip_address("10.0.0.1"),)
    # ... and a fix clears it, as does deleting the bad one.
    standin.patch_node("good", {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.7"}]}},
                       strategic=False)
    wait_for(lambda: r.source.snapshot()["good"].internal_ips == (ipaddress.ip_address("10.0.0.7"),), "the fix")
    standin.delete_node("bad")
    wait_for(lambda: not r.source.stats.bad_nodes, "bad nodes to clear")
    assert r.source.stats.bad_node_updates == 2


def test_stop_interrupts_a_long_watch(standin, running):
    r = running(watch_timeout=300)
    wait_for(lambda: r.source.stats.watches == 1, "the watch to start")
    r.close()  # asserts run() returned within the deadline, long before the 300 s watch would end


def test_five_thousand_nodes_sync_in_one_change(standin, running):
    for n in range(5000):
        standin.create_node(make_node(f"node-{n:04d}", [f"10.{n // 250}.{n % 250}.1"],
                                      [f"10.{100 + n // 250}.{n % 250}.0/24"]))
    r = running()
    wait_for(lambda: r.changes, "the 5,000-node list", deadline=60)
    assert len(r.changes[0]) == 5000
    assert r.source.stats.relists == 1


def test_a_failing_on_change_does_not_stop_the_source(standin, tmp_path):
    standin.create_node(node("n1", 1))
    calls = []

    def on_change(snapshot):
        calls.append(dict(snapshot))
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    source = NodeSource(api_client(standin.write_kubeconfig(str(tmp_path / "kc"))), on_change,
                        watch_timeout=2, backoff_initial=0.05, backoff_max=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: calls, "the first (failing) call")
        standin.create_node(node("n2", 2))
        wait_for(lambda: len(calls) == 2, "the next change")
        assert sorted(calls[1]) == ["n1", "n2"]
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not thread.is_alive()
