"""Per-peer import policy: default route when configured, max-prefix warn/teardown, rejections counted."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

from bgpnet.model import LearnedRoute
from bgpnet.policy import AS_PATH_LOOP, MAX_PREFIX, OUTSIDE_CLUSTER, ImportPolicy
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

TOR = A("172.20.1.1")
BASE = ImportPolicy((N("10.244.0.0/16"),), (N("10.244.1.0/24"),), 65001)


def route(prefix, path=(65100, 65002)):
    return LearnedRoute(TOR, R(prefix), TOR, path)


def test_default_route_only_when_configured_and_still_loop_checked():
    assert BASE.reject_reason(route("0.0.0.0/0")) == OUTSIDE_CLUSTER
    allowing = ImportPolicy(BASE.cluster_cidrs, BASE.own_cidrs, 65001, accept_default_route=True)
    assert allowing.reject_reason(route("0.0.0.0/0")) is None
    assert allowing.reject_reason(route("0.0.0.0/0", (65100, 65001))) == AS_PATH_LOOP
    assert allowing.reject_reason(route("10.0.0.0/8")) == OUTSIDE_CLUSTER


def test_max_prefix_warn_keeps_routes_and_flags_the_peer():
    rib = Rib()
    warn = ImportPolicy(BASE.cluster_cidrs, BASE.own_cidrs, 65001, max_prefixes=2)
    assert rib.update(TOR, [route(f"10.244.{i}.0/24") for i in (2, 3, 4)], [], warn) == []
    assert rib.accepted(TOR) == 3 and rib.over_limit == {TOR: "warn"}
    rib.update(TOR, [], [R("10.244.4.0/24")], warn)
    assert rib.over_limit == {}


def test_max_prefix_teardown_drops_everything_and_counts_each_route():
    rib = Rib()
    teardown = ImportPolicy(BASE.cluster_cidrs, BASE.own_cidrs, 65001, max_prefixes=2,
                            max_prefix_action="teardown")
    rib.update(TOR, [route("10.244.2.0/24"), route("10.244.3.0/24")], [], teardown)
    assert rib.accepted(TOR) == 2 and rib.over_limit == {}
    rejected = rib.update(TOR, [route("10.244.4.0/24")], [], teardown)
    assert {r.reason for r in rejected} == {MAX_PREFIX} and len(rejected) == 3
    assert rib.accepted(TOR) == 0 and rib.routes == {}
    assert rib.rejected[(TOR, MAX_PREFIX)] == 3 and rib.over_limit == {TOR: "teardown"}
    assert len(rib.reject_all(TOR, [route("10.244.5.0/24")], MAX_PREFIX)) == 1
    assert rib.rejected[(TOR, MAX_PREFIX)] == 4


def test_refilter_with_a_policy_per_peer():
    rib = Rib()
    other = A("172.21.1.1")
    rib.update(TOR, [route("10.244.2.0/24", (65100, 65002))], [], BASE)
    rib.update(other, [LearnedRoute(other, R("10.244.2.0/24"), other, (65200, 65002))], [], BASE)
    # The node moved to AS 65002 for sessions with TOR only: its paths now loop, the other peer's do not.
    moved = ImportPolicy(BASE.cluster_cidrs, BASE.own_cidrs, 65002)
    rejected = rib.refilter(lambda peer: moved if peer == TOR else BASE)
    assert [(r.peer, r.reason) for r in rejected] == [(TOR, AS_PATH_LOOP)]
    assert rib.routes[R("10.244.2.0/24")].gateways == (other,)
