"""LoadBalancer address pools (`loadBalancerPools` in the config): parsed and validated (pure).

    loadBalancerPools:
      - name: public                      # a DNS-1123 label, unique
        addresses: ["192.0.2.0/24", "198.51.100.10-198.51.100.20", "2001:db8:1::/120"]
        autoAssign: true                  # false: only Services asking for an address of it get one
        namespaces: [web, shop]           # optional: only Services of these namespaces
        serviceSelector:                  # optional: only Services with these labels
          matchLabels: {exposure: public}

A CIDR pool hands out every address of the CIDR, its network and broadcast addresses included (MetalLB with
`avoidBuggyIPs: false`): a LoadBalancer address is a /32 (/128) announced on its own, not a subnet with hosts,
so `.0` and `.255` are ordinary addresses to routers. Pools must not overlap, across families and pools: one
address belongs to at most one pool, so "which pool is this address in" always has one answer.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bgpnet.config_error import ConfigError
from bgpnet.model import IPAddress

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_POOL_FIELDS = {"name", "addresses", "autoAssign", "namespaces", "serviceSelector"}


@dataclass(frozen=True)
class LoadBalancerPool:
    """One pool: inclusive address ranges (a CIDR is one range), sorted and disjoint, and which Services may
    draw from it."""

    name: str
    ranges: tuple[tuple[IPAddress, IPAddress], ...]
    auto_assign: bool = True
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    service_selector: tuple[tuple[str, str], ...] = ()  # matchLabels; empty: every Service

    def families(self) -> tuple[int, ...]:
        return tuple(sorted({start.version for start, _ in self.ranges}))

    def int_ranges(self, version: int) -> tuple[tuple[int, int], ...]:
        """The ranges of one IP version as (first, last) integers, ascending."""
        return tuple((int(a), int(b)) for a, b in self.ranges if a.version == version)

    def capacity(self, version: int) -> int:
        return sum(last - first + 1 for first, last in self.int_ranges(version))

    def contains(self, ip: IPAddress) -> bool:
        ranges = self.int_ranges(ip.version)
        value = int(ip)
        i = bisect.bisect_right(ranges, (value, 1 << 129)) - 1
        return i >= 0 and ranges[i][0] <= value <= ranges[i][1]

    def may_serve(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """The pool's namespaces and service selector admit a Service of `namespace` with `labels`."""
        if self.namespaces and namespace not in self.namespaces:
            return False
        return all(labels.get(k) == v for k, v in self.service_selector)


def parse_pools(field: str, value: Any) -> tuple[LoadBalancerPool, ...]:
    """`loadBalancerPools`: a list of pools; raises ConfigError naming the exact field."""
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise ConfigError(field, "must be a list of pools")
    pools = tuple(_pool(f"{field}[{i}]", item) for i, item in enumerate(value))
    seen: dict[str, int] = {}
    for i, pool in enumerate(pools):
        if pool.name in seen:
            raise ConfigError(f"{field}[{i}].name", f"pool name {pool.name!r} is already used by "
                                                    f"{field}[{seen[pool.name]}]")
        seen[pool.name] = i
    _reject_overlaps(field, pools)
    return pools


def _pool(field: str, value: Any) -> LoadBalancerPool:
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping with name and addresses")
    for key in value:
        if key not in _POOL_FIELDS:
            raise ConfigError(f"{field}.{key}", f"unknown field (known: {', '.join(sorted(_POOL_FIELDS))})")
    for required in ("name", "addresses"):
        if required not in value:
            raise ConfigError(f"{field}.{required}", "is required")
    name = value["name"]
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        raise ConfigError(f"{field}.name", f"must be a DNS-1123 label (lower case alphanumerics and '-', at most "
                                           f"63 characters, starting and ending alphanumeric), got {name!r}")
    addresses = value["addresses"]
    if not isinstance(addresses, list) or not addresses:
        raise ConfigError(f"{field}.addresses", "must be a non-empty list of CIDRs or address ranges")
    ranges = [_range(f"{field}.addresses[{j}]", item) for j, item in enumerate(addresses)]
    ordered = sorted(ranges, key=lambda r: (r[0].version, int(r[0])))
    for (a_start, a_end), (b_start, b_end) in zip(ordered, ordered[1:], strict=False):
        if a_start.version == b_start.version and int(b_start) <= int(a_end):
            raise ConfigError(f"{field}.addresses", f"{_show(a_start, a_end)} and {_show(b_start, b_end)} overlap")
    auto = value.get("autoAssign", True)
    if not isinstance(auto, bool):
        raise ConfigError(f"{field}.autoAssign", f"must be true or false, got {auto!r}")
    return LoadBalancerPool(name=name, ranges=tuple(ordered), auto_assign=auto,
                            namespaces=_namespaces(f"{field}.namespaces", value.get("namespaces", [])),
                            service_selector=_selector(f"{field}.serviceSelector", value.get("serviceSelector", {})))


def _range(field: str, item: Any) -> tuple[IPAddress, IPAddress]:
    """`10.0.0.0/24`, `10.0.1.10-10.0.1.20` or one address (`10.0.2.7`, as a range of one)."""
    if not isinstance(item, str) or not item.strip():
        raise ConfigError(field, f"must be a CIDR or an address range such as 10.0.1.10-10.0.1.20, got {item!r}")
    text = item.strip()
    if "-" in text:
        first, _, last = text.partition("-")
        try:
            start, end = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
        except ValueError as exc:
            raise ConfigError(field, f"invalid address range {item!r}: {exc}") from None
        if start.version != end.version:
            raise ConfigError(field, f"invalid address range {item!r}: both ends must be of one IP family")
        if int(start) > int(end):
            raise ConfigError(field, f"invalid address range {item!r}: the start is after the end")
        return start, end
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ConfigError(field, f"invalid CIDR {item!r}: {exc}") from None
    return network[0], network[-1]


def _namespaces(field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and _DNS_LABEL.match(n) for n in value):
        raise ConfigError(field, f"must be a list of namespace names, got {value!r}")
    return tuple(dict.fromkeys(value))


def _selector(field: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping with matchLabels")
    for key in value:
        if key != "matchLabels":
            raise ConfigError(f"{field}.{key}", "unknown field (known: matchLabels)")
    labels = value.get("matchLabels", {})
    if not isinstance(labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in labels.items()):
        raise ConfigError(f"{field}.matchLabels", "must be a mapping of label names to string values")
    return tuple(sorted(labels.items()))


def _reject_overlaps(field: str, pools: tuple[LoadBalancerPool, ...]) -> None:
    spans = sorted(((start.version, int(start), int(end), start, end, pool.name)
                    for pool in pools for start, end in pool.ranges))
    for a, b in zip(spans, spans[1:], strict=False):
        if a[0] == b[0] and b[1] <= a[2]:
            raise ConfigError(field, f"pools {a[5]!r} and {b[5]!r} overlap: {_show(a[3], a[4])} and "
                                     f"{_show(b[3], b[4])}")


def _show(start: IPAddress, end: IPAddress) -> str:
    return str(start) if start == end else f"{start}-{end}"
