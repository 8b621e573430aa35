"""Lease-based leader election against the API stand-in, with the real client and short timings."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from bgpnet.kube.leader import LeaderElector, micro_time

NS = "bgpnet-system"
FAST = {"lease_duration": 2, "renew_deadline": 1.2, "retry_period": 0.2}


class Candidate:
    def __init__(self, api, identity, **options):
        self.elector = LeaderElector(api, identity, NS, **{**FAST, **options})
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.elector.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def halt(self):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def _poll(predicate, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _lease(api_client):
    return client.CoordinationV1Api(api_client).read_namespaced_lease("bgpnet-lb-allocator", NS).spec


def test_micro_time_always_has_six_fractional_digits():
    from datetime import UTC, datetime, timedelta, timezone
    assert micro_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    local = datetime(2026, 1, 2, 5, 4, 5, 7, tzinfo=timezone(timedelta(hours=2)))
    assert micro_time(local) == "2026-01-02T03:04:05.000007Z"


def test_timings_must_leave_a_margin():
    with pytest.raises(ValueError):
        LeaderElector(None, "x", lease_duration=2, renew_deadline=2.0, retry_period=0.2)


def test_two_candidates_exactly_one_leads_and_a_clean_stop_hands_over_at_once(make_api):
    a, b = Candidate(make_api(), "node-a"), Candidate(make_api(), "node-b")
    try:
        assert _poll(lambda: a.elector.leading() or b.elector.leading())
        overlap = []
        for _ in range(60):  # 1.2 s of renewals: never both
            overlap.append(a.elector.leading() and b.elector.leading())
            time.sleep(0.02)
        assert not any(overlap)
        leader, other = (a, b) if a.elector.leading() else (b, a)
        assert _lease(make_api()).holder_identity == leader.elector.identity
        assert leader.elector.term() == 1 and other.elector.term() == 0
        stopped = time.monotonic()
        leader.halt()
        assert not leader.elector.leading()
        assert _poll(other.elector.leading)
        assert time.monotonic() - stopped < 1.5  # released: no need to wait out the 2 s lease
        spec = _lease(make_api())
        assert (spec.holder_identity, spec.lease_transitions) == (other.elector.identity, 1)
    finally:
        a.halt()
        b.halt()


def test_a_crashed_leader_is_replaced_only_after_the_lease_duration(make_api):
    a = Candidate(make_api(), "node-a", release_on_stop=False)
    assert _poll(a.elector.leading)
    b = Candidate(make_api(), "node-b")
    try:
        time.sleep(0.5)
        assert not b.elector.leading()
        crashed = time.monotonic()
        a.halt()  # no release: the Lease still names node-a
        assert _lease(make_api()).holder_identity == "node-a"
        assert _poll(b.elector.leading)
        waited = time.monotonic() - crashed
        assert 1.5 <= waited < 4.0, waited  # the 2 s duration, counted from b's last observation of a renewal
        assert _lease(make_api()).lease_transitions == 1 and b.elector.term() == 1
    finally:
        b.halt()


def test_a_leader_that_cannot_renew_steps_down_before_its_lease_can_expire(standin, make_api):
    a = Candidate(make_api(), "node-a")
    try:
        assert _poll(a.elector.leading)
        standin.stop()  # an API outage: renewals fail
        outage = time.monotonic()
        assert _poll(lambda: not a.elector.leading())
        stepped_down = time.monotonic() - outage
        # The lease was last renewed at most one retry period before the outage; others wait 2 s after that.
        assert stepped_down < 2.0 - 0.2, stepped_down
        assert stepped_down >= 1.2 - 0.2 - 0.05
        standin.start()
        assert _poll(a.elector.leading)  # still the holder when the API is back: a new term
        assert a.elector.term() == 2
    finally:
        a.halt()


def test_a_stale_renewal_is_a_conflict_and_ends_the_term_at_once(make_api):
    a = Candidate(make_api(), "node-a", lease_duration=30, renew_deadline=20.0, retry_period=0.3)
    try:
        assert _poll(a.elector.leading)
        # Someone force-writes the Lease (an operator, or a candidate with a broken clock).
        coord = client.CoordinationV1Api(make_api())
        coord.patch_namespaced_lease("bgpnet-lb-allocator", NS, {"spec": {"holderIdentity": "intruder"}})
        assert _poll(lambda: not a.elector.leading(), deadline=3.0)  # long before the 20 s renew deadline
    finally:
        a.halt()
