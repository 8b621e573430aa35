"""Import policy and RIB: what may enter the kernel, ECMP across peers, and peers that go away."""

from ipaddress import ip_address as A
from ipaddress import ip_network as N

import pytest

from bgpnet.model import KernelRoute, LearnedRoute
from bgpnet.policy import (
    AS_PATH_LOOP,
    NEXT_HOP_FAMILY,
    OUTSIDE_CLUSTER,
    OWN_CIDR,
    POD_CIDR_MORE_SPECIFIC,
    WRONG_ORIGIN,
    ImportPolicy,
    NodeOrigin,
    OriginTable,
)
from bgpnet.prefix import Prefix
from bgpnet.rib import Rib, best_routes

R = Prefix.parse  # route prefixes; N(...) stays the ipaddress network of config and Nodes

POLICY = ImportPolicy(cluster_cidrs=(N("10.244.0.0/16"), N("fd00:10:244::/48")),
                      own_cidrs=(N("10.244.1.0/24"), N("fd00:10:244:1::/64")), own_asn=64512)
P1, P2 = A("172.31.0.2"), A("172.31.0.3")


def route(prefix, peer=P1, nh=None, path=()):
    return LearnedRoute(peer=peer, prefix=R(prefix), next_hop=A(nh) if nh else peer, as_path=tuple(path))


@pytest.mark.parametrize(("r", "reason"), [
    (route("10.244.2.0/24"), None),
    (route("fd00:10:244:2::/64", nh="fd00::2"), None),
    (route("0.0.0.0/0"), OUTSIDE_CLUSTER),
    (route("10.0.0.0/8"), OUTSIDE_CLUSTER),
    (route("192.168.0.0/24"), OUTSIDE_CLUSTER),
    (route("10.244.1.0/24"), OWN_CIDR),
    (route("10.244.1.7/32"), OWN_CIDR),
    (route("10.244.0.0/16"), OWN_CIDR),
    (route("10.244.2.0/24", path=(65001, 64512)), AS_PATH_LOOP),
    (route("10.244.2.0/24", path=(65001, 65002)), None),
    (route("fd00:10:244:2::/64"), NEXT_HOP_FAMILY),
])
def test_import_policy(r, reason):
    assert POLICY.reject_reason(r) == reason


def test_best_routes_prefers_shorter_path_and_ecmps_equal_ones():
    a = route("10.244.2.0/24", P1, path=(65001,))
    b = route("10.244.2.0/24", P2, path=(65002,))
    c = route("10.244.2.0/24", A("172.31.0.4"), path=(65003, 65001))
    assert best_routes([c, a, b]) == KernelRoute(R("10.244.2.0/24"), (P1, P2))
    assert best_routes([c]) == KernelRoute(R("10.244.2.0/24"), (A("172.31.0.4"),))
    assert best_routes([]) is None


def test_rib_announce_withdraw_and_rejects_are_counted():
    rib = Rib()
    rejected = rib.update(P1, [route("10.244.2.0/24"), route("10.244.1.0/24"), route("0.0.0.0/0")], [], POLICY)
    assert [(r.prefix, r.reason) for r in rejected] == [
        (R("10.244.1.0/24"), OWN_CIDR), (R("0.0.0.0/0"), OUTSIDE_CLUSTER)]
    assert dict(rib.routes) == {R("10.244.2.0/24"): KernelRoute(R("10.244.2.0/24"), (P1,))}
    assert rib.rejected[(P1, OWN_CIDR)] == 1 and rib.rejected[(P1, OUTSIDE_CLUSTER)] == 1
    rib.update(P1, [], [R("10.244.2.0/24"), R("10.244.9.0/24")], POLICY)
    assert dict(rib.routes) == {}
    assert rib.accepted(P1) == 0


def test_rejected_reannouncement_implicitly_withdraws_the_old_path():
    rib = Rib()
    rib.update(P1, [route("10.244.2.0/24")], [], POLICY)
    rib.update(P1, [route("10.244.2.0/24", path=(64512,))], [], POLICY)
    assert dict(rib.routes) == {}


def test_ecmp_shrinks_and_grows_with_peers():
    rib = Rib()
    rib.update(P1, [route("10.244.2.0/24", P1)], [], POLICY)
    rib.update(P2, [route("10.244.2.0/24", P2)], [], POLICY)
    assert rib.routes[R("10.244.2.0/24")].gateways == (P1, P2)
    assert rib.drop_peer(P1) == 1
    assert rib.routes[R("10.244.2.0/24")].gateways == (P2,)
    rib.update(P1, [route("10.244.2.0/24", P1)], [], POLICY)
    assert rib.routes[R("10.244.2.0/24")].gateways == (P1, P2)
    rib.drop_peer(P1)
    rib.drop_peer(P2)
    assert dict(rib.routes) == {} and rib.drop_peer(P2) == 0


def test_refilter_after_own_cidr_changes():
    rib = Rib()
    rib.update(P1, [route("10.244.2.0/24"), route("10.244.3.0/24")], [], POLICY)
    new_policy = ImportPolicy(POLICY.cluster_cidrs, (N("10.244.3.0/24"),), 64512)
    rejected = rib.refilter(new_policy)
    assert [(r.prefix, r.reason) for r in rejected] == [(R("10.244.3.0/24"), OWN_CIDR)]
    assert list(rib.routes) == [R("10.244.2.0/24")]


# --- origin check: a prefix inside another Node's pod CIDR must come from that Node -------------------------

NODE2 = NodeOrigin(N("10.244.2.0/24"), 65002, frozenset({A("172.31.0.2"), A("fd00::2")}))
NODE3 = NodeOrigin(N("fd00:10:244:3::/64"), 65003, frozenset({A("fd00::3")}))
GUARDED = ImportPolicy(POLICY.cluster_cidrs, POLICY.own_cidrs, 65001, origins=OriginTable((NODE2, NODE3)))
TOR = A("172.20.1.1")


@pytest.mark.parametrize(("r", "reason"), [
    # iBGP (mesh, or a route reflector keeping the originator's next hop): the next hop must be the Node.
    (route("10.244.2.0/24", peer=A("172.31.0.2")), None),
    (route("10.244.2.0/24", peer=A("172.31.0.9")), WRONG_ORIGIN),
    (route("10.244.2.0/24", peer=TOR, nh="172.31.0.2"), None),
    # eBGP: the AS path must end in the Node's ASN, whatever sits in front of it.
    (route("10.244.2.0/24", peer=TOR, path=(65100, 65002)), None),
    (route("10.244.2.0/24", peer=TOR, path=(65100, 65500, 65102, 65002)), None),
    (route("10.244.2.0/24", peer=TOR, path=(65666,)), WRONG_ORIGIN),
    (route("10.244.2.0/24", peer=TOR, path=(65002, 65666)), WRONG_ORIGIN),
    # a more specific of a Node's CIDR is never legitimate, whatever its AS path or next hop claims
    (route("10.244.2.128/25", peer=TOR, path=(65666,)), POD_CIDR_MORE_SPECIFIC),
    (route("10.244.2.7/32", peer=TOR, path=(65100,)), POD_CIDR_MORE_SPECIFIC),
    (route("10.244.2.7/32", peer=TOR, path=(65100, 65002)), POD_CIDR_MORE_SPECIFIC),
    (route("10.244.2.0/25", peer=A("172.31.0.2")), POD_CIDR_MORE_SPECIFIC),
    (route("fd00:10:244:3::/80", peer=A("fd00::3")), POD_CIDR_MORE_SPECIFIC),
    # IPv6 Node CIDRs too
    (route("fd00:10:244:3::/64", peer=A("fd00::3")), None),
    (route("fd00:10:244:3::/64", peer=A("fd00::9")), WRONG_ORIGIN),
    # in the cluster CIDRs but in no Node's CIDR: not checked
    (route("10.244.9.0/24", peer=TOR, path=(65666,)), None),
    # the cheaper checks still come first
    (route("10.244.1.0/24", peer=TOR, path=(65666,)), OWN_CIDR),
])
def test_origin_check_refuses_hijacks_of_other_nodes_cidrs(r, reason):
    assert GUARDED.reject_reason(r) == reason


def test_origin_table_is_built_from_the_other_nodes():
    from bgpnet.config import parse_config
    from bgpnet.model import NodeInfo
    from bgpnet.state import origin_table

    cfg = parse_config({"asn": 64512, "clusterCIDRs": ["10.244.0.0/16"]})
    me = NodeInfo("n1", (A("172.31.0.1"),), (N("10.244.1.0/24"),))
    n2 = NodeInfo("n2", (A("172.31.0.2"),), (N("10.244.2.0/24"),), labels=(("bgpnet.io/asn", "65002"),))
    n3 = NodeInfo("n3", (A("172.31.0.3"),), ())
    table = origin_table(cfg, me, {"n1": me, "n2": n2, "n3": n3})
    assert table.origins == (NodeOrigin(N("10.244.2.0/24"), 65002, frozenset({A("172.31.0.2")})),)
