"""RouteTable's decisions against a fake netlink that models the kernel's main table: what gets added,
replaced, deleted or left alone; that foreign routes are never touched; that errors are per route."""

from __future__ import annotations

import errno
import ipaddress
import threading

import pytest

from bgpnet.model import IPAddress, IPNetwork, KernelRoute
from bgpnet.prefix import Prefix
from bgpnet.routes import CONFLICT, RouteBatch, RouteTable
from bgpnet.routes.messages import DumpedRoute
from bgpnet.routes.seam import ADD, DELETE, REPLACE, BatchFailure
from bgpnet.routes.table import merge_dump

ip, net = ipaddress.ip_address, Prefix.parse
DEFAULT_METRIC = {4: 0, 6: 1024}


def route(prefix: str, *gateways: str) -> KernelRoute:
    return KernelRoute(net(prefix), tuple(ip(g) for g in gateways))


class FakeRouteNetlink:
    """The kernel's route table as far as RouteTable can tell: entries keyed by (prefix, metric), each with
    a protocol. Like the kernel, EXCL refuses any existing key (EEXIST), REPLACE overwrites whatever holds
    the key (foreign or not), a delete naming a protocol only hits a route with that protocol (ESRCH), and
    a gateway outside the connected networks is ENETUNREACH."""

    def __init__(self, connected: tuple[str, ...] = ("172.31.0.0/24", "fd00:ff::/64")) -> None:
        self.connected = [ipaddress.ip_network(c) for c in connected]
        self.kernel: dict[tuple[IPNetwork, int], tuple[int, KernelRoute]] = {}
        self.batches: list[RouteBatch] = []
        self.dumps = 0
        self.explode_next_send = False

    def own(self, proto: int = 179) -> dict[IPNetwork, KernelRoute]:
        return {prefix: r for (prefix, _), (p, r) in self.kernel.items() if p == proto}

    def put(self, kernel_route: KernelRoute, *, proto: int, metric: int | None = None) -> None:
        prefix = kernel_route.prefix
        self.kernel[(prefix, DEFAULT_METRIC[prefix.version] if metric is None else metric)] = (proto, kernel_route)

    def _reachable(self, gateways: tuple[IPAddress, ...]) -> bool:
        return all(any(g in c for c in self.connected) for g in gateways)

    def dump(self, *, proto: int, table: int, known=()) -> list[DumpedRoute]:
        self.dumps += 1
        return [DumpedRoute(r, metric) for (_, metric), (p, r) in self.kernel.items() if p == proto]

    def send(self, batch: RouteBatch, *, proto: int, table: int) -> list[BatchFailure]:
        if self.explode_next_send:
            self.explode_next_send = False
            raise OSError(errno.ENOBUFS, "answers lost")
        self.batches.append(batch)
        failures = []
        for index, (prefix, metric) in enumerate(batch.delete):
            keys = [k for k, (p, _) in self.kernel.items()
                    if k[0] == prefix and p == proto and (metric is None or k[1] == metric)]
            if keys:
                del self.kernel[keys[0]]
            else:
                failures.append(BatchFailure(DELETE, index, errno.ESRCH))
        for kind, routes in ((REPLACE, batch.replace), (ADD, batch.add)):
            for index, r in enumerate(routes):
                key = (r.prefix, DEFAULT_METRIC[r.prefix.version])
                if kind == ADD and key in self.kernel:
                    failures.append(BatchFailure(kind, index, errno.EEXIST))
                elif not self._reachable(r.gateways):
                    failures.append(BatchFailure(kind, index, errno.ENETUNREACH))
                else:
                    self.kernel[key] = (proto, r)
        return failures

    def close(self) -> None:
        pass


@pytest.fixture
def fake():
    return FakeRouteNetlink()


def test_first_apply_adds_everything_and_records_it(fake):
    table = RouteTable(fake)
    desired = [route("10.1.0.0/24", "172.31.0.2"), route("fd00:1::/64", "fd00:ff::2")]
    result = table.apply(desired)
    assert (result.added, result.replaced, result.removed, result.errors) == (2, 0, 0, ())
    assert fake.own() == {r.prefix: r for r in desired}
    assert dict(table.installed()) == {r.prefix: r for r in desired}


@pytest.mark.parametrize(("before", "after", "counts"), [
    (route("10.1.0.0/24", "172.31.0.2"), route("10.1.0.0/24", "172.31.0.3"), (0, 1, 0)),
    (route("10.1.0.0/24", "172.31.0.2"), route("10.1.0.0/24", "172.31.0.2", "172.31.0.3"), (0, 1, 0)),
    (route("10.1.0.0/24", "172.31.0.3", "172.31.0.2"), route("10.1.0.0/24", "172.31.0.3"), (0, 1, 0)),
    (route("fd00:1::/64", "fd00:ff::2"), route("fd00:1::/64", "fd00:ff::2", "fd00:ff::3"), (0, 1, 0)),
    (route("fd00:1::/64", "fd00:ff::2", "fd00:ff::3"), route("fd00:1::/64", "fd00:ff::3"), (0, 1, 0)),
], ids=["gateway-change", "ecmp-grow", "ecmp-shrink", "ipv6-ecmp-grow", "ipv6-ecmp-shrink"])
def test_changed_gateways_are_replaced(fake, before, after, counts):
    table = RouteTable(fake)
    table.apply([before])
    result = table.apply([after])
    assert (result.added, result.replaced, result.removed) == counts
    assert fake.batches[-1] == RouteBatch(delete=[], replace=[after], add=[])
    assert fake.own() == {after.prefix: after}


def test_stale_routes_are_deleted_and_only_they(fake):
    table = RouteTable(fake)
    keep, drop6, drop4 = route("10.1.0.0/24", "172.31.0.2"), route("fd00:1::/64", "fd00:ff::2"), \
        route("10.2.0.0/24", "172.31.0.2")
    table.apply([keep, drop6, drop4])
    result = table.apply([keep])
    assert (result.added, result.replaced, result.removed) == (0, 0, 2)
    assert sorted(map(str, (p for p, _ in fake.batches[-1].delete))) == ["10.2.0.0/24", "fd00:1::/64"]
    assert fake.own() == {keep.prefix: keep}
    assert dict(table.installed()) == {keep.prefix: keep}


def test_unchanged_desired_set_sends_nothing(fake):
    table = RouteTable(fake)
    desired = [route(f"10.1.{i}.0/24", "172.31.0.2") for i in range(50)]
    table.apply(desired)
    sent = len(fake.batches)
    # Equal but freshly built routes, in another order: still nothing to do.
    result = table.apply([route(f"10.1.{i}.0/24", "172.31.0.2") for i in reversed(range(50))])
    assert (result.added, result.replaced, result.removed, result.errors) == (0, 0, 0, ())
    assert len(fake.batches) == sent


def test_one_unreachable_gateway_is_reported_and_the_rest_installed(fake):
    table = RouteTable(fake)
    good = [route(f"10.1.{i}.0/24", "172.31.0.2") for i in range(10)]
    bad = route("10.9.0.0/24", "192.0.2.1")
    result = table.apply([*good[:5], bad, *good[5:]])
    assert result.added == 10
    assert [(e.prefix, e.op, e.errno, e.reason) for e in result.errors] == [
        (bad.prefix, ADD, errno.ENETUNREACH, "ENETUNREACH")]
    assert fake.own() == {r.prefix: r for r in good}
    assert bad.prefix not in table.installed()
    # Not installed, so it is retried on the next apply (and fails again while the gateway is unreachable).
    again = table.apply([*good, bad])
    assert fake.batches[-1].add == [bad] and len(again.errors) == 1


def test_failed_replace_keeps_the_old_route_in_the_cache(fake):
    table = RouteTable(fake)
    old = route("10.1.0.0/24", "172.31.0.2")
    table.apply([old])
    result = table.apply([route("10.1.0.0/24", "192.0.2.1")])
    assert [(e.op, e.reason) for e in result.errors] == [(REPLACE, "ENETUNREACH")]
    assert table.installed()[old.prefix] == old == fake.own()[old.prefix]


def test_foreign_route_for_the_same_prefix_is_a_conflict_and_never_replaced(fake):
    static = route("10.5.0.0/24", "172.31.0.9")
    fake.put(static, proto=4)
    table = RouteTable(fake)
    ours = route("10.5.0.0/24", "172.31.0.2")
    other = route("10.6.0.0/24", "172.31.0.2")
    result = table.apply([ours, other])
    assert [(e.prefix, e.reason, e.errno) for e in result.errors] == [(ours.prefix, CONFLICT, errno.EEXIST)]
    assert result.added == 1
    assert fake.kernel[(ours.prefix, 0)] == (4, static)
    assert ours.prefix not in table.installed()
    # The resync does not clobber it either, and a withdraw never deletes it.
    assert [e.reason for e in table.resync([ours, other]).errors] == [CONFLICT]
    table.apply([])
    assert fake.kernel == {(ours.prefix, 0): (4, static)}


def test_route_taken_over_by_another_owner_is_released_at_resync_not_clobbered(fake):
    table = RouteTable(fake)
    ours = route("10.5.0.0/24", "172.31.0.2")
    table.apply([ours])
    fake.put(route("10.5.0.0/24", "172.31.0.7"), proto=4)  # `ip route replace` by an operator: proto boot
    result = table.resync([ours])
    assert [e.reason for e in result.errors] == [CONFLICT]
    assert fake.kernel[(ours.prefix, 0)][0] == 4
    assert table.installed() == {}


def test_first_apply_adopts_routes_left_by_a_previous_run(fake):
    same, changed, gone = route("10.1.0.0/24", "172.31.0.2"), route("10.2.0.0/24", "172.31.0.2"), \
        route("fd00:3::/64", "fd00:ff::2")
    for leftover in (same, changed, gone):
        fake.put(leftover, proto=179)
    table = RouteTable(fake)
    new_changed = route("10.2.0.0/24", "172.31.0.3")
    result = table.apply([same, new_changed])
    assert (result.added, result.replaced, result.removed, result.errors) == (0, 1, 1, ())
    assert fake.batches[-1] == RouteBatch(delete=[(gone.prefix, None)], replace=[new_changed], add=[])
    assert fake.own() == {same.prefix: same, new_changed.prefix: new_changed}


def test_dump_reads_leftovers_without_changing_anything(fake):
    ours, foreign = route("10.1.0.0/24", "172.31.0.2"), route("10.9.0.0/24", "172.31.0.2")
    fake.put(ours, proto=179)
    fake.put(foreign, proto=4)
    table = RouteTable(fake)
    assert dict(table.dump()) == {ours.prefix: ours}
    assert fake.batches == []
    assert fake.own() == {ours.prefix: ours}


def test_resync_heals_drift_behind_our_back(fake):
    table = RouteTable(fake)
    a, b, c = route("10.1.0.0/24", "172.31.0.2"), route("10.2.0.0/24", "172.31.0.2"), \
        route("fd00:3::/64", "fd00:ff::2", "fd00:ff::3")
    table.apply([a, b, c])
    del fake.kernel[(a.prefix, 0)]                           # ip route del
    fake.put(route("10.2.0.0/24", "172.31.0.9"), proto=179)  # ip route replace ... proto 179
    fake.put(route("10.3.0.0/24", "172.31.0.2"), proto=179)  # an extra route of ours
    assert table.apply([a, b, c]).added == 0                 # apply trusts its cache...
    result = table.resync([a, b, c])                         # ...resync re-reads the kernel
    assert (result.added, result.replaced, result.removed, result.errors) == (1, 1, 1, ())
    assert fake.own() == {a.prefix: a, b.prefix: b, c.prefix: c}


def test_resync_deletes_our_stray_route_at_another_metric_only(fake):
    wanted = route("10.1.0.0/24", "172.31.0.2")
    fake.put(wanted, proto=179)
    fake.put(route("10.1.0.0/24", "172.31.0.3"), proto=179, metric=50)
    fake.put(route("10.1.0.0/24", "172.31.0.4"), proto=4, metric=70)
    table = RouteTable(fake)
    result = table.resync([wanted])
    assert (result.removed, result.errors) == (1, ())
    assert fake.batches[-1].delete == [(wanted.prefix, 50)]
    assert set(fake.kernel) == {(wanted.prefix, 0), (wanted.prefix, 70)}


def test_delete_of_a_route_already_gone_counts_as_removed(fake):
    table = RouteTable(fake)
    r = route("10.1.0.0/24", "172.31.0.2")
    table.apply([r])
    fake.kernel.clear()
    result = table.apply([])
    assert (result.removed, result.errors) == (1, ())
    assert table.installed() == {}


def test_route_without_gateway_is_refused_before_sending(fake):
    table = RouteTable(fake)
    result = table.apply([KernelRoute(net("10.1.0.0/24")), route("10.2.0.0/24", "172.31.0.2")])
    assert [(str(e.prefix), e.reason) for e in result.errors] == [("10.1.0.0/24", "no-gateway")]
    assert fake.batches[-1].add == [route("10.2.0.0/24", "172.31.0.2")]


def test_lost_answers_make_the_next_apply_reread_the_kernel(fake):
    table = RouteTable(fake)
    r = route("10.1.0.0/24", "172.31.0.2")
    table.apply([])
    dumps = fake.dumps
    fake.explode_next_send = True
    with pytest.raises(OSError):
        table.apply([r])
    fake.put(r, proto=179)  # the kernel did apply it before the answers were lost
    result = table.apply([r])
    assert fake.dumps == dumps + 1
    assert (result.added, result.errors) == (0, ())
    assert table.installed() == {r.prefix: r}


def test_route_error_reads_well():
    table = RouteTable(FakeRouteNetlink())
    [error] = table.apply([route("10.9.0.0/24", "192.0.2.1")]).errors
    assert str(error) == "add 10.9.0.0/24: ENETUNREACH (Network is unreachable)"


# --- the background resync ------------------------------------------------------------------------------------
class GatedDump(FakeRouteNetlink):
    """A kernel whose dump snapshot is taken when asked, but handed over only when `release` is set: what a
    slow 50k-route dump looks like to the apply path."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.taken = threading.Event()

    def dump(self, *, proto: int, table: int, known=()) -> list[DumpedRoute]:
        snapshot = super().dump(proto=proto, table=table, known=known)
        self.taken.set()
        assert self.release.wait(5)
        return snapshot


def test_a_change_during_a_resync_goes_out_at_once_and_survives_the_stale_dump():
    kernel = GatedDump()
    table = RouteTable(kernel, dump_netlink=lambda: kernel)
    keep, doomed = route("10.1.0.0/24", "172.31.0.2"), route("10.2.0.0/24", "172.31.0.2")
    kernel.release.set()
    table.apply([keep, doomed])  # the first apply reads the kernel itself (not gated)
    kernel.release.clear()
    kernel.taken.clear()
    kernel.kernel.pop((keep.prefix, DEFAULT_METRIC[4]))  # somebody deletes one of ours behind our back
    done = threading.Event()
    table.start_resync(done.set)
    assert kernel.taken.wait(5)  # the dump has its (stale) snapshot and is still running
    desired = {keep.prefix: keep}
    result = table.apply_changes(desired, {doomed.prefix})  # the withdrawal does not wait for the resync
    assert result.removed == 1 and doomed.prefix not in kernel.own()
    assert table.finish_resync(desired.values()) is None  # still running
    kernel.release.set()
    assert done.wait(5)
    repaired = table.finish_resync(desired.values())
    # The dump still showed `doomed` (taken before the withdrawal): it is not resurrected, not deleted twice;
    # the route deleted behind our back is re-installed.
    assert (repaired.added, repaired.removed) == (1, 0)
    assert kernel.own() == {keep.prefix: keep} and dict(table.installed()) == {keep.prefix: keep}
    assert not table.resync_running()


def test_merge_dump_prefers_the_cache_for_prefixes_applied_meanwhile():
    a, b, c = route("10.1.0.0/24", "172.31.0.2"), route("10.2.0.0/24", "172.31.0.2"), route("10.3.0.0/24",
                                                                                            "172.31.0.3")
    dumped = [DumpedRoute(a, DEFAULT_METRIC[4]), DumpedRoute(b, DEFAULT_METRIC[4]), DumpedRoute(c, 2048)]
    installed, strays = merge_dump(dumped, {a.prefix: a, c.prefix: c}, touched={b.prefix, c.prefix})
    assert installed == {a.prefix: a, c.prefix: c}  # b withdrawn meanwhile; c added meanwhile
    assert strays == []  # a stray of a touched prefix waits for the next resync


def test_a_failed_background_dump_makes_the_next_apply_read_the_kernel():
    class Failing(FakeRouteNetlink):
        def dump(self, **kwargs):
            raise OSError(errno.ENOBUFS, "dump interrupted")

    kernel = FakeRouteNetlink()
    table = RouteTable(kernel, dump_netlink=Failing)
    table.apply([route("10.1.0.0/24", "172.31.0.2")])
    done = threading.Event()
    table.start_resync(done.set)
    assert done.wait(5)
    with pytest.raises(OSError, match="dump interrupted"):
        table.finish_resync([])
    dumps = kernel.dumps
    table.apply([route("10.1.0.0/24", "172.31.0.2")])
    assert kernel.dumps == dumps + 1
