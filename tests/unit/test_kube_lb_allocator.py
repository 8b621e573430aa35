"""The leader-elected LoadBalancer allocator end to end: real client, API stand-in, short timings."""

from __future__ import annotations

import ipaddress
import threading
import time

import pytest

from bgpnet.config import LOAD_BALANCER_CLASS, LoadBalancerSettings
from bgpnet.kube.lb_allocator import LoadBalancerAllocator
from bgpnet.lb_pools import parse_pools

FAST = {"lease_duration": 2, "renew_deadline": 1.2, "retry_period": 0.2, "watch_timeout": 5}


@pytest.fixture
def start(make_api):
    running = []

    def start_allocator(identity, *pools, **options):
        settings = LoadBalancerSettings(pools=parse_pools("loadBalancerPools", list(pools)))
        allocator = LoadBalancerAllocator(make_api(), settings, identity, **{**FAST, **options})
        stop = threading.Event()
        thread = threading.Thread(target=allocator.run, args=(stop,), daemon=True)
        thread.start()

        def halt():
            stop.set()
            thread.join(10)
            assert not thread.is_alive()

        running.append(halt)
        allocator.halt = halt
        return allocator

    yield start_allocator
    for halt in running:
        halt()


def _service(name, namespace="default", *, annotations=None, **spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": LOAD_BALANCER_CLASS, "ports": [{"port": 80}],
                     **spec}}


def _ingress(standin):
    """namespace/name -> ingress IPs of every Service that has some."""
    out = {}
    for obj in standin.objects("services"):
        ips = [i["ip"] for i in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        if ips:
            out[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"] = ips
    return out


def _poll(predicate, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _events(api, name, namespace="default"):
    return [(e.type, e.reason, e.message, e.involved_object.kind, e.involved_object.uid) for e in
            api.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items]


BIG = {"name": "big", "addresses": ["10.1.0.0/16"]}


def test_500_services_get_500_distinct_addresses_in_their_status(standin, start):
    for i in range(500):
        standin.create(_service(f"s{i:03d}", f"ns{i % 5}"))
    started = time.monotonic()
    allocator = start("node-a", BIG)
    assert _poll(lambda: len(_ingress(standin)) == 500)
    elapsed = time.monotonic() - started
    addresses = [ip for ips in _ingress(standin).values() for ip in ips]
    assert len(set(addresses)) == 500 and all(ipaddress.ip_address(a) in ipaddress.ip_network("10.1.0.0/16")
                                              for a in addresses)
    stats = allocator.stats()
    assert stats.leader and stats.services == 500 and stats.pending == 0
    assert stats.pools["big"].in_use == {4: 500} and stats.pools["big"].capacity == {4: 65536}
    assert stats.status_writes == 500 and stats.relists == 1
    print(f"\n500 Services allocated and written in {elapsed:.2f}s (election included); "
          f"decision {stats.last_decision_seconds * 1000:.1f} ms")
    # Nothing differs any more: a re-decision writes nothing.
    standin.create(_service("late"))
    assert _poll(lambda: "default/late" in _ingress(standin))
    time.sleep(0.3)
    assert allocator.stats().status_writes == 501


def test_exhausted_pool_leaves_a_service_pending_with_a_warning_and_deletion_frees(standin, start, api):
    for i in range(5):
        standin.create(_service(f"s{i}"))
    allocator = start("node-a", {"name": "tiny", "addresses": ["192.0.2.0/30"]})
    assert _poll(lambda: len(_ingress(standin)) == 4)
    assert _poll(lambda: _events(api, "s4"))
    uid = standin.get("services", "s4", "default")["metadata"]["uid"]
    assert _events(api, "s4") == [("Warning", "AllocationFailed",
                                   "no LoadBalancer address: no free IPv4 address: pools 'tiny' are exhausted",
                                   "Service", uid)]
    assert allocator.stats().pending == 1 and allocator.stats().allocation_failures == 1
    freed = _ingress(standin)["default/s1"]
    api.delete_namespaced_service("s1", "default")
    assert _poll(lambda: _ingress(standin).get("default/s4") == freed)
    assert _poll(lambda: ("Normal", "IPAllocated") in [e[:2] for e in _events(api, "s4")])
    assert allocator.stats().pending == 0
    # A type change away from LoadBalancer frees the address too.
    moved = _ingress(standin)["default/s2"]
    api.patch_namespaced_service("s2", "default", {"spec": {"type": "ClusterIP"}})
    standin.create(_service("s5"))
    assert _poll(lambda: _ingress(standin).get("default/s5") == moved)
    assert "default/s2" not in _ingress(standin)
    # Only one Warning for s4 though it was pending over several decisions.
    assert [e[1] for e in _events(api, "s4")].count("AllocationFailed") == 1


def test_requested_addresses_are_honoured_and_refused_ones_are_explained(standin, start, api):
    standin.create(_service("by-spec", loadBalancerIP="10.1.2.3"))
    standin.create(_service("by-annotation", annotations={"bgpnet.io/load-balancer-ips": "10.1.9.9"}))
    standin.create(_service("outside", annotations={"bgpnet.io/load-balancer-ips": "203.0.113.7"}))
    standin.create(_service("other-class", loadBalancerClass="example.com/lb"))
    start("node-a", BIG)
    assert _poll(lambda: len(_ingress(standin)) == 2)
    assert _ingress(standin) == {"default/by-spec": ["10.1.2.3"], "default/by-annotation": ["10.1.9.9"]}
    assert _poll(lambda: _events(api, "outside"))
    assert _events(api, "outside")[0][2] == "no LoadBalancer address: requested address 203.0.113.7 is in no pool"
    assert _events(api, "other-class") == []


def test_failover_mid_way_never_gives_an_address_twice(standin, start):
    for i in range(300):
        standin.create(_service(f"s{i:03d}"))
    first = start("node-a", BIG, release_on_stop=False)
    assert _poll(lambda: len(_ingress(standin)) >= 50)
    first.halt()  # a crash in the middle of writing: the Lease is left to expire
    by_first = _ingress(standin)
    assert 50 <= len(by_first) <= 300
    for i in range(300, 350):  # more Services arrive while nobody leads
        standin.create(_service(f"s{i:03d}"))
    second = start("node-b", BIG)
    assert _poll(lambda: len(_ingress(standin)) == 350)
    final = _ingress(standin)
    addresses = [ip for ips in final.values() for ip in ips]
    assert len(set(addresses)) == 350
    assert all(final[k] == v for k, v in by_first.items())  # what the first leader wrote stays
    assert second.stats().leader and not first.stats().leader and second.stats().term == 1


def test_two_allocators_only_the_leader_writes(standin, start):
    for i in range(50):
        standin.create(_service(f"s{i:02d}"))
    a, b = start("node-a", BIG), start("node-b", BIG)
    assert _poll(lambda: len(_ingress(standin)) == 50)
    leader, other = (a, b) if a.stats().leader else (b, a)
    assert other.stats().status_writes == 0 and other.stats().relists == 0
    leader.halt()  # clean stop: released, the other takes over at once and keeps everything
    before = _ingress(standin)
    assert _poll(lambda: other.stats().leader, deadline=5)
    standin.create(_service("after"))
    assert _poll(lambda: "default/after" in _ingress(standin))
    after = _ingress(standin)
    assert {k: v for k, v in after.items() if k != "default/after"} == before
    assert after["default/after"][0] not in {ip for ips in before.values() for ip in ips}
