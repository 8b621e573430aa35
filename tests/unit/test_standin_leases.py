"""coordination.k8s.io/v1 Leases in the API stand-in, through the real client's CoordinationV1Api: what leader
election relies on — a renewal from a stale read is a 409 Conflict, so two candidates cannot both hold a Lease."""

from __future__ import annotations

import datetime
import json
import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

NS = "bgpnet-system"
UTC = datetime.UTC


@pytest.fixture
def make_coord(standin):
    """A separate client (own connection pool) per call: two leader-election candidates."""
    clients = []

    def make():
        cfg = client.Configuration()
        cfg.host = standin.url
        clients.append(client.ApiClient(cfg))
        return client.CoordinationV1Api(clients[-1])

    yield make
    for api_client in clients:
        api_client.close()


def _now():
    return datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _lease(name="bgpnet-lb-allocator", holder="node-a", when=None):
    when = when or _now()
    return client.V1Lease(metadata=client.V1ObjectMeta(name=name), spec=client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=15, acquire_time=when, renew_time=when, lease_transitions=0))


def _conflict_message(name):
    return (f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again")


def test_create_get_and_times_in_utc_with_microseconds(make_coord):
    coord = make_coord()
    local = datetime.datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    created = coord.create_namespaced_lease(NS, _lease(when=local))
    assert created.spec.holder_identity == "node-a" and created.metadata.resource_version
    raw = json.loads(coord.read_namespaced_lease(created.metadata.name, NS, _preload_content=False).data)
    assert raw["spec"]["renewTime"] == "2026-01-02T03:04:05.123456Z"  # MicroTime, written back in UTC
    assert (raw["kind"], raw["apiVersion"]) == ("Lease", "coordination.k8s.io/v1")
    assert coord.read_namespaced_lease(created.metadata.name, NS).spec.acquire_time == _now()


def test_two_candidates_renewing_from_the_same_read_one_wins_one_gets_409(make_coord):
    first, second = make_coord(), make_coord()
    first.create_namespaced_lease(NS, _lease(holder="node-a"))
    seen_by_a = first.read_namespaced_lease("bgpnet-lb-allocator", NS)
    seen_by_b = second.read_namespaced_lease("bgpnet-lb-allocator", NS)
    seen_by_a.spec.renew_time = _now() + datetime.timedelta(seconds=5)
    renewed = first.replace_namespaced_lease("bgpnet-lb-allocator", NS, seen_by_a)
    assert int(renewed.metadata.resource_version) > int(seen_by_a.metadata.resource_version)
    seen_by_b.spec.holder_identity = "node-b"
    seen_by_b.spec.lease_transitions = 1
    with pytest.raises(ApiException) as err:
        second.replace_namespaced_lease("bgpnet-lb-allocator", NS, seen_by_b)
    assert err.value.status == 409
    assert json.loads(err.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": _conflict_message("bgpnet-lb-allocator"), "reason": "Conflict", "code": 409,
        "details": {"name": "bgpnet-lb-allocator", "group": "coordination.k8s.io", "kind": "leases"}}
    assert second.read_namespaced_lease("bgpnet-lb-allocator", NS).spec.holder_identity == "node-a"
    # Re-read, then take over: a fresh resourceVersion wins.
    fresh = second.read_namespaced_lease("bgpnet-lb-allocator", NS)
    fresh.spec.holder_identity = "node-b"
    assert second.replace_namespaced_lease("bgpnet-lb-allocator", NS, fresh).spec.holder_identity == "node-b"


def test_simultaneous_takeovers_exactly_one_succeeds(make_coord):
    make_coord().create_namespaced_lease(NS, _lease(holder="old"))
    candidates = [make_coord() for _ in range(6)]
    reads = [c.read_namespaced_lease("bgpnet-lb-allocator", NS) for c in candidates]
    barrier = threading.Barrier(len(candidates))
    outcomes: dict[str, object] = {}

    def take_over(i):
        lease = reads[i]
        lease.spec.holder_identity = f"node-{i}"
        barrier.wait()
        try:
            candidates[i].replace_namespaced_lease("bgpnet-lb-allocator", NS, lease)
            outcomes[f"node-{i}"] = "won"
        except ApiException as exc:
            outcomes[f"node-{i}"] = exc.status

    threads = [threading.Thread(target=take_over, args=(i,)) for i in range(len(candidates))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and sorted(o for o in outcomes.values() if o != "won") == [409] * 5
    assert make_coord().read_namespaced_lease("bgpnet-lb-allocator", NS).spec.holder_identity == winners[0]


def test_update_without_resource_version_is_refused(make_coord):
    coord = make_coord()
    coord.create_namespaced_lease(NS, _lease())
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("bgpnet-lb-allocator", NS, _lease(holder="node-b"))
    body = json.loads(err.value.body)
    assert (err.value.status, body["message"]) == (
        422, 'leases.coordination.k8s.io "bgpnet-lb-allocator" is invalid: metadata.resourceVersion: Invalid '
             "value: 0x0: must be specified for an update")
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                          "message": "Invalid value: 0x0: must be specified for an update"}]


def test_patch_needs_no_resource_version_but_a_stale_one_conflicts(make_coord):
    coord = make_coord()
    created = coord.create_namespaced_lease(NS, _lease())
    patched = coord.patch_namespaced_lease("bgpnet-lb-allocator", NS, {"spec": {"holderIdentity": "node-b"}})
    assert patched.spec.holder_identity == "node-b"
    with pytest.raises(ApiException) as err:
        coord.patch_namespaced_lease("bgpnet-lb-allocator", NS, {
            "metadata": {"resourceVersion": created.metadata.resource_version}, "spec": {"holderIdentity": "x"}},
            _content_type="application/merge-patch+json")
    assert (err.value.status, json.loads(err.value.body)["message"]) == (409, _conflict_message(
        "bgpnet-lb-allocator"))


def test_times_without_six_fractional_digits_or_a_zone_are_400(make_coord):
    coord = make_coord()
    cases = [
        (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00", "+00:00", ".000000"),
        (datetime.datetime(2026, 1, 2, 3, 4, 5, 7), "2026-01-02T03:04:05.000007", "", "Z07:00"),
    ]
    for when, sent, rest, element in cases:
        with pytest.raises(ApiException) as err:
            coord.create_namespaced_lease(NS, _lease(name="times", when=when))
        assert (err.value.status, json.loads(err.value.body)["message"]) == (
            400, f'Lease in version "v1" cannot be handled as a Lease: parsing time "{sent}" as '
                 f'"2006-01-02T15:04:05.000000Z07:00": cannot parse "{rest}" as "{element}"')
    assert coord.list_namespaced_lease(NS).items == []


def test_validation(make_coord):
    coord = make_coord()
    bad = _lease()
    bad.spec.lease_duration_seconds = 0
    bad.spec.lease_transitions = -1
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease(NS, bad)
    assert (err.value.status, json.loads(err.value.body)["message"]) == (
        422, 'Lease.coordination.k8s.io "bgpnet-lb-allocator" is invalid: [spec.leaseDurationSeconds: Invalid '
             "value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater than or "
             "equal to 0]")


def test_list_and_watch(make_coord):
    coord = make_coord()
    rv = coord.list_lease_for_all_namespaces().metadata.resource_version
    coord.create_namespaced_lease(NS, _lease())
    coord.create_namespaced_lease("kube-node-lease", _lease(name="n1", holder="n1"))
    coord.patch_namespaced_lease("bgpnet-lb-allocator", NS, {"spec": {"holderIdentity": "node-b"}})
    assert [(x.metadata.namespace, x.metadata.name) for x in coord.list_lease_for_all_namespaces().items] == [
        (NS, "bgpnet-lb-allocator"), ("kube-node-lease", "n1")]
    events = [(e["type"], e["object"].spec.holder_identity)
              for e in watch.Watch().stream(coord.list_namespaced_lease, NS, resource_version=rv, timeout_seconds=1)]
    assert events == [("ADDED", "node-a"), ("MODIFIED", "node-b")]


def test_delete_with_a_stale_precondition_conflicts(make_coord):
    coord = make_coord()
    created = coord.create_namespaced_lease(NS, _lease())
    coord.patch_namespaced_lease("bgpnet-lb-allocator", NS, {"spec": {"holderIdentity": "node-b"}})
    current = coord.read_namespaced_lease("bgpnet-lb-allocator", NS).metadata.resource_version
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(
        resource_version=created.metadata.resource_version))
    with pytest.raises(ApiException) as err:
        coord.delete_namespaced_lease("bgpnet-lb-allocator", NS, body=stale)
    assert (err.value.status, json.loads(err.value.body)["message"]) == (
        409, 'Operation cannot be fulfilled on leases.coordination.k8s.io "bgpnet-lb-allocator": StorageError: '
             f"invalid object, Code: 4, Key: /registry/leases/{NS}/bgpnet-lb-allocator, ResourceVersion: 0, "
             f"AdditionalErrorMsg: Precondition failed: ResourceVersion in precondition: "
             f"{created.metadata.resource_version}, ResourceVersion in object meta: {current}")
    fresh = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=current))
    status = coord.delete_namespaced_lease("bgpnet-lb-allocator", NS, body=fresh)
    assert status["status"] == "Success" and coord.list_namespaced_lease(NS).items == []  # a Status, as a dict


def test_group_discovery(api_client):
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}
    assert [v.version for v in groups["coordination.k8s.io"].versions] == ["v1"]
    group = client.CoordinationApi(api_client).get_api_group()
    assert (group.name, group.preferred_version.group_version) == ("coordination.k8s.io", "coordination.k8s.io/v1")
    resources = client.CoordinationV1Api(api_client).get_api_resources()
    assert [(r.name, r.singular_name, r.kind, r.namespaced) for r in resources.resources] == [
        ("leases", "lease", "Lease", True)]
