"""The Service source against the API stand-in through the real kubernetes client: what it delivers (only what
changed), what it keeps (facts, not objects), and how it rides out a watch that ends or a consumer that fails."""

from __future__ import annotations

import threading
import time
from ipaddress import ip_address as A

import pytest
from kubernetes import client

from bgpnet.kube.service_source import ServiceSource
from bgpnet.lab.services import service_body, slice_body

FAST = {"resync_period": 300, "watch_timeout": 300, "backoff_initial": 0.05, "backoff_max": 0.2}


class Recorder:
    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[dict, dict]] = []
        self.services: dict = {}
        self.local: dict = {}
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, services, local):
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                raise RuntimeError("consumer bug")
            self.calls.append((dict(services), dict(local)))
            for key, value in services.items():
                if value is None:
                    self.services.pop(key, None)
                else:
                    self.services[key] = value
            self.local.update(local)


def wait(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def apis(api_client):
    return client.CoreV1Api(api_client), client.DiscoveryV1Api(api_client)


@pytest.fixture
def running(api_client):
    started = []

    def start(recorder, node="n1", **timings):
        source = ServiceSource(api_client, node, recorder, **{**FAST, **timings})
        stop = threading.Event()
        thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
        thread.start()
        started.append((stop, thread))
        return source, stop, thread

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(5)


def test_initial_sync_delivers_services_and_local_facts(apis, running):
    core, discovery = apis
    core.create_namespaced_service("default", service_body("web"))
    discovery.create_namespaced_endpoint_slice("default", slice_body("web", {"n1": ["10.244.1.5"],
                                                                             "n2": ["10.244.2.5"]}))
    recorder = Recorder()
    source, _, _ = running(recorder)
    wait(lambda: source.stats.synced and recorder.local.get("default/web") is True, what="initial sync")
    web = recorder.services["default/web"]
    assert (web.type, web.external_local, web.load_balancer_class) == ("LoadBalancer", True, "bgpnet.io/bgp")
    assert source.stats.services_with_local_endpoints == 1 and source.stats.slices == 1


def test_the_first_delivery_carries_services_and_their_endpoints_together(apis, running):
    core, discovery = apis
    for name in ("a", "b"):
        core.create_namespaced_service("default", service_body(name))
        discovery.create_namespaced_endpoint_slice("default", slice_body(name, {"n1": ["10.244.1.5"]}))
    recorder = Recorder()
    source, _, _ = running(recorder)
    wait(lambda: source.stats.synced, what="sync")
    services, local = recorder.calls[0]
    assert {"default/a", "default/b"} <= set(services) and local == {"default/a": True, "default/b": True}


def test_an_empty_cluster_syncs_too(running):
    source, _, _ = running(Recorder())
    wait(lambda: source.stats.synced, what="sync of nothing")


def test_an_endpoint_moving_away_delivers_only_that_fact_and_back_again(apis, running):
    core, discovery = apis
    core.create_namespaced_service("default", service_body("web"))
    core.create_namespaced_service("default", service_body("other"))
    discovery.create_namespaced_endpoint_slice("default", slice_body("web", {"n1": ["10.244.1.5"]}))
    recorder = Recorder()
    source, _, _ = running(recorder)
    wait(lambda: recorder.local.get("default/web") is True, what="sync")
    relists = source.stats.relists
    recorder.calls.clear()
    discovery.replace_namespaced_endpoint_slice("web-v4", "default", slice_body("web", {"n2": ["10.244.2.5"]}))
    wait(lambda: recorder.local.get("default/web") is False, what="moved away")
    assert recorder.calls == [({}, {"default/web": False})]
    # Terminating on this node does not count; ready again does.
    discovery.replace_namespaced_endpoint_slice("web-v4", "default", slice_body(
        "web", {"n1": ["10.244.1.6"]}, terminating=["n1"]))
    time.sleep(0.2)
    assert recorder.local["default/web"] is False
    discovery.replace_namespaced_endpoint_slice("web-v4", "default", slice_body("web", {"n1": ["10.244.1.6"]}))
    wait(lambda: recorder.local.get("default/web") is True, what="back")
    assert source.stats.relists == relists  # all through the watch


def test_two_slices_of_one_service_count_together(apis, running):
    core, discovery = apis
    core.create_namespaced_service("default", service_body("web"))
    discovery.create_namespaced_endpoint_slice("default", slice_body("web", {"n1": ["10.244.1.5"]}))
    discovery.create_namespaced_endpoint_slice("default", slice_body("web", {"n1": ["fd10::5"]}, family=6))
    recorder = Recorder()
    running(recorder)
    wait(lambda: recorder.local.get("default/web") is True, what="sync")
    discovery.delete_namespaced_endpoint_slice("web-v4", "default")
    time.sleep(0.2)
    assert recorder.local["default/web"] is True  # the IPv6 slice still has one
    discovery.delete_namespaced_endpoint_slice("web-v6", "default")
    wait(lambda: recorder.local.get("default/web") is False, what="last slice gone")


def test_service_change_and_deletion(apis, running):
    core, _ = apis
    core.create_namespaced_service("default", service_body("web"))
    recorder = Recorder()
    running(recorder)
    wait(lambda: "default/web" in recorder.services, what="sync")
    core.patch_namespaced_service_status("web", "default",
                                         {"status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}})
    wait(lambda: recorder.services["default/web"].ingress_ips == (A("198.51.100.7"),), what="ingress")
    core.delete_namespaced_service("web", "default")
    wait(lambda: "default/web" not in recorder.services, what="deleted")
    assert recorder.calls[-1] == ({"default/web": None}, {})


def test_a_failing_consumer_gets_everything_again_after_a_relist(apis, running):
    core, _ = apis
    core.create_namespaced_service("default", service_body("web"))
    recorder = Recorder(fail_first=1)
    source, _, thread = running(recorder)
    wait(lambda: "default/web" in recorder.services, what="delivery after the failure")
    assert thread.is_alive() and source.stats.relists >= 2


def test_stop_returns_promptly_mid_watch(apis, running):
    recorder = Recorder()
    source, stop, thread = running(recorder)
    wait(lambda: source.stats.synced, what="sync")
    time.sleep(0.2)  # in the watch now
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 2
