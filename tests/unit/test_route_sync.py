"""RouteSync on its own: when a round rebuilds the whole desired map and when it applies only the RIB's changes,
that a failed round is followed by a rebuild, the background resync, and what it records for status."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.model import LearnedRoute
from bgpnet.policy import ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib
from bgpnet.route_sync import RouteSync
from bgpnet.routes.table import ApplyResult, RouteError
from tests.unit.test_agent import FakeRouteTable

R = Prefix.parse
P2 = A("172.31.0.2")
POLICY = ImportPolicy(cluster_cidrs=(N("10.0.0.0/8"),), own_cidrs=(N("10.244.1.0/24"),), own_asn=64512)


class Table(FakeRouteTable):
    """Counts which path each round took."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []
        self.fail = False

    def apply(self, desired):
        self.calls.append("apply")
        return self._result(super().apply(desired))

    def apply_changes(self, desired, prefixes):
        self.calls.append(f"changes:{len(prefixes)}")
        return self._result(super().apply_changes(desired, prefixes))

    def _result(self, result):
        if not self.fail:
            return result
        return ApplyResult(result.added, 0, result.removed, (RouteError(R("10.1.0.0/26"), "add", 101,
                                                                        "ENETUNREACH"),), 0.0)


def announce(rib, *prefixes):
    rib.update(P2, [LearnedRoute(peer=P2, prefix=R(p), next_hop=P2) for p in prefixes], (), POLICY)


def sync_round(sync, rib, now=1.0, *, resync=False, force=False, wakes=None):
    round_ = sync.take(rib, resync=resync, force_rebuild=force)
    wakes = [] if wakes is None else wakes
    return sync.run(round_, {}, own_node_known=True, now=now, wake=lambda: wakes.append(now))


def test_the_first_round_rebuilds_and_later_rounds_apply_only_what_changed():
    table, rib = Table(), Rib()
    sync = RouteSync(table, None, period=60)
    announce(rib, "10.1.0.0/26", "10.1.0.64/26")
    sync_round(sync, rib)
    announce(rib, "10.1.0.128/26")
    sync_round(sync, rib)
    sync_round(sync, rib)  # nothing changed
    assert table.calls == ["apply", "changes:1", "changes:0"]
    assert set(table.kernel) == {R("10.1.0.0/26"), R("10.1.0.64/26"), R("10.1.0.128/26")}


def test_a_new_rib_or_a_forced_round_rebuilds():
    table, rib = Table(), Rib()
    sync = RouteSync(table, None, period=60)
    announce(rib, "10.1.0.0/26")
    sync_round(sync, rib)
    sync_round(sync, rib, force=True)
    fresh = Rib()  # an ExaBGP restart starts a new RIB
    sync_round(sync, fresh)
    assert table.calls == ["apply", "apply", "apply"]
    assert table.kernel == {}


def test_a_round_that_took_changes_but_failed_before_applying_them_is_followed_by_a_rebuild():
    table, rib = Table(), Rib()
    sync = RouteSync(table, None, period=60)
    sync_round(sync, rib)
    announce(rib, "10.1.0.0/26")
    sync.take(rib, resync=False, force_rebuild=False)  # the round dies here (e.g. the speaker pipe broke)
    sync_round(sync, rib)
    assert table.calls == ["apply", "apply"]
    assert set(table.kernel) == {R("10.1.0.0/26")}


def test_resync_is_due_once_per_period_and_is_recorded_as_such():
    table, rib = Table(), Rib()
    sync = RouteSync(table, None, period=60)
    assert sync.resync_due(100.0)
    wakes = []
    sync_round(sync, rib, 100.0, resync=True, wakes=wakes)
    assert wakes  # the fake's dump is in at once; the real table wakes the loop from its own thread
    assert not sync.resync_due(159.0) and sync.resync_due(160.0)
    assert sync.until_resync(130.0) == 30.0
    status = sync.status(stale=0)
    assert status.durations["resync"].count == 1 and status.durations["apply"].count == 0
    assert table.resyncs == 1


def test_programmed_needs_our_own_node_and_no_route_error():
    table, rib = Table(), Rib()
    sync = RouteSync(table, None, period=60)
    announce(rib, "10.1.0.0/26")
    sync.run(sync.take(rib, resync=False, force_rebuild=False), {}, own_node_known=False, now=1.0,
             wake=lambda: None)
    assert not sync.programmed
    sync_round(sync, rib)
    assert sync.programmed
    table.fail = True
    announce(rib, "10.1.0.64/26")
    sync_round(sync, rib)
    assert not sync.programmed
    assert sync.status(stale=3).errors == {"ENETUNREACH": 1} and sync.status(stale=3).stale == 3
    assert sync.status(stale=0).installed == {"ipv4": 2, "ipv6": 0}
