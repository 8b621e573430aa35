"""`natOutgoing`: which pod traffic is masqueraded, as an nftables ruleset (pure).

Calico's meaning: traffic from this node's pods to a destination outside every cluster CIDR leaves with the
node's address (masquerade), because nothing outside the cluster has a route back to the pod CIDRs; traffic
to another pod (any cluster CIDR) never is — pods see each other's own addresses, which is the point of a
routed pod network. Destinations after kube-proxy's DNAT are pod addresses, so Services are not NATed either.

Default (`natOutgoing` unset): on when this node has no BGP peer outside the cluster (node-to-node mesh only:
no router outside knows the pod CIDRs, so replies could not come back), off when it peers with a ToR or any
configured peer (the fabric carries the pod CIDRs, and the pods' own addresses should reach the outside, as
in kube-router's and Calico's BGP designs). `natOutgoing: true/false` overrides either way.

The rules live in one table of bgpnet's own (`inet bgpnet`), replaced as a whole in one nft transaction (add,
flush, refill: never a moment without rules) and deleted when NAT is off; no other table is read or touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bgpnet.model import IPNetwork

TABLE = {"family": "inet", "name": "bgpnet"}
CHAIN = "postrouting"
# After other postrouting NAT at the default priority (srcnat = 100), like kube-proxy's and Calico's chains.
PRIORITY = 100
_ADDR_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
_PROTOCOL = {4: "ip", 6: "ip6"}


def enabled(setting: bool | None, has_external_peers: bool) -> bool:
    """`natOutgoing` as configured, or the default for this node (see the module docstring)."""
    return setting if setting is not None else not has_external_peers


def ruleset(pod_cidrs: Iterable[IPNetwork], cluster_cidrs: Iterable[IPNetwork]) -> dict[str, Any]:
    """The nft JSON batch that makes `inet bgpnet` masquerade traffic from `pod_cidrs` (this node's) to
    anything outside `cluster_cidrs` — and nothing else."""
    pods, cluster = list(pod_cidrs), list(cluster_cidrs)
    commands: list[dict[str, Any]] = [{"add": {"table": TABLE}}, {"flush": {"table": TABLE}},
                                      {"add": {"chain": {**_in_table(), "name": CHAIN, "type": "nat",
                                                         "hook": "postrouting", "prio": PRIORITY,
                                                         "policy": "accept"}}}]
    for version in (4, 6):
        own = [n for n in pods if n.version == version]
        if not own:
            continue
        commands += [_set(f"pods{version}", version, own),
                     _set(f"cluster{version}", version, [n for n in cluster if n.version == version] or own)]
        field = {"payload": {"protocol": _PROTOCOL[version], "field": "saddr"}}
        commands.append({"add": {"rule": {**_in_table(), "chain": CHAIN, "comment": "bgpnet natOutgoing", "expr": [
            {"match": {"op": "==", "left": field, "right": f"@pods{version}"}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": _PROTOCOL[version], "field": "daddr"}},
                       "right": f"@cluster{version}"}},
            {"masquerade": None}]}}})
    return {"nftables": commands}


def removal() -> dict[str, Any]:
    """The batch that deletes `inet bgpnet` whether or not it exists (add first: delete of a missing table
    fails the whole batch)."""
    return {"nftables": [{"add": {"table": TABLE}}, {"delete": {"table": TABLE}}]}


def _in_table() -> dict[str, str]:
    return {"family": TABLE["family"], "table": TABLE["name"]}


def _set(name: str, version: int, networks: list[IPNetwork]) -> dict[str, Any]:
    return {"add": {"set": {**_in_table(), "name": name, "type": _ADDR_TYPE[version], "flags": ["interval"],
                            "elem": [{"prefix": {"addr": str(n.network_address), "len": n.prefixlen}}
                                     for n in _without_overlaps(networks)]}}}


def _without_overlaps(networks: list[IPNetwork]) -> list[IPNetwork]:
    """An interval set refuses overlapping elements: keep the widest of nested ones."""
    kept: list[IPNetwork] = []
    for n in sorted(set(networks), key=lambda n: (n.prefixlen, n)):
        if not any(n.subnet_of(k) for k in kept):  # type: ignore[arg-type]
            kept.append(n)
    return sorted(kept)
