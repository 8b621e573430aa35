"""Which LoadBalancer addresses each Service should have (pure; the leader-elected allocator writes them).

Input: the settings and every Service as last seen, whose `ingress_ips` (status.loadBalancer.ingress) are the
current assignments. The API server's Services are the one record of what is in use: a leader that just took
over starts from a full list, so an address written by its predecessor is never handed out again.

Rules, in the order they are applied (each step sees what the earlier ones took):
1. Served Services are those of type LoadBalancer whose class bgpnet serves (`LoadBalancerSettings.serves`).
   Every other Service holds nothing: a deleted, unserved or no-longer-LoadBalancer Service frees its addresses.
2. Keep: an address already in a served Service's status stays when it lies in a pool that may serve the
   Service, is of a family the Service wants, matches the Service's request for that family if it has one,
   and no earlier Service kept it. Services are taken in `namespace/name` order, so when two claim one address
   (only a bug or a foreign writer does that) the same one wins on every node and after every failover.
3. Requested: `spec.loadBalancerIP` or the `bgpnet.io/load-balancer-ips` annotation is honoured when the
   address is in a pool that may serve the Service (its autoAssign does not matter: a pool with
   `autoAssign: false` exists for exactly this) and free; otherwise the family stays pending with the reason.
4. Auto: each wanted family still missing gets the lowest free address of the first (config order) eligible
   pool with `autoAssign` and a free address of that family.

Families: `spec.ipFamilies` in order (the API server always fills it; a dual-stack Service lists both and gets
one address of each, the primary first). Empty — only for objects that never went through defaulting — means
the families of the requested addresses, else IPv4, the API server's default for a single-stack cluster.
A family that cannot be served leaves the Service pending for that family only: the others are assigned (a
dual-stack Service keeps working on IPv4 while its IPv6 pool is exhausted; the Warning Event says so).

Cost: O(Services x pools x log ranges) plus, per pool, a cursor that only moves forward within one decision:
nothing frees an address in the middle of a decision, so the lowest free address never moves back and a /16
pool is never scanned per Service.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bgpnet.config import LoadBalancerSettings
from bgpnet.lb_pools import LoadBalancerPool
from bgpnet.model import IPAddress, ServiceInfo

LOAD_BALANCER = "LoadBalancer"
_FAMILY_NAMES = {4: "IPv4", 6: "IPv6"}


@dataclass(frozen=True)
class PoolUsage:
    """Addresses in use and the pool's size, per IP version (only the versions the pool has)."""

    name: str
    in_use: Mapping[int, int]
    capacity: Mapping[int, int]


@dataclass(frozen=True)
class Allocation:
    # Every served Service: the ingress addresses it should have, primary family first (may be empty).
    assigned: Mapping[str, tuple[IPAddress, ...]]
    # Served Services missing an address of some family: one reason per missing family.
    pending: Mapping[str, tuple[str, ...]]
    # Services that are no longer LoadBalancer but still show addresses of bgpnet's pools: clear their ingress.
    cleared: tuple[str, ...]
    pools: Mapping[str, PoolUsage] = field(default_factory=dict)


def wanted_families(service: ServiceInfo) -> tuple[int, ...]:
    if service.ip_families:
        return service.ip_families
    requested = [ip.version for ip in _parsed_requests(service)]
    return tuple(dict.fromkeys(requested)) or (4,)


def served(settings: LoadBalancerSettings, service: ServiceInfo) -> bool:
    return service.type == LOAD_BALANCER and settings.serves(service.load_balancer_class)


class _Family:
    """The ranges of one pool in one IP version, the addresses taken in it and a forward-only cursor."""

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self.ranges = ranges
        self.starts = [first for first, _ in ranges]
        self.capacity = sum(last - first + 1 for first, last in ranges)
        self.used: set[int] = set()
        self._range = 0
        self._next = ranges[0][0] if ranges else 0

    def contains(self, value: int) -> bool:
        i = bisect.bisect_right(self.starts, value) - 1
        return i >= 0 and value <= self.ranges[i][1]

    def lowest_free(self) -> int | None:
        """The lowest address not taken; valid while nothing is freed (true within one decision)."""
        while self._range < len(self.ranges):
            last = self.ranges[self._range][1]
            while self._next <= last and self._next in self.used:
                self._next += 1
            if self._next <= last:
                return self._next
            self._range += 1
            if self._range < len(self.ranges):
                self._next = self.ranges[self._range][0]
        return None


class _Pools:
    def __init__(self, pools: tuple[LoadBalancerPool, ...]) -> None:
        self.pools = pools
        self.families = {(p.name, v): _Family(p.int_ranges(v)) for p in pools for v in p.families()}
        self.holder: dict[IPAddress, str] = {}

    def pool_of(self, ip: IPAddress) -> LoadBalancerPool | None:
        value = int(ip)
        for pool in self.pools:
            family = self.families.get((pool.name, ip.version))
            if family is not None and family.contains(value):
                return pool
        return None

    def take(self, pool: LoadBalancerPool, ip: IPAddress, key: str) -> None:
        self.families[(pool.name, ip.version)].used.add(int(ip))
        self.holder[ip] = key


def allocate(settings: LoadBalancerSettings, services: Iterable[ServiceInfo]) -> Allocation:
    """The addresses every served Service should have, with reasons for what cannot be served."""
    state = _Pools(settings.pools)
    ordered = sorted(services, key=lambda s: s.key)
    serving = [s for s in ordered if served(settings, s)]
    got: dict[str, dict[int, IPAddress]] = {s.key: {} for s in serving}
    reasons: dict[str, dict[int, str]] = {s.key: {} for s in serving}
    for service in serving:
        _keep(state, service, got[service.key])
    for service in serving:
        _request(state, service, got[service.key], reasons[service.key])
    for service in serving:
        _auto(state, service, got[service.key], reasons[service.key])
    cleared = tuple(s.key for s in ordered if s.type != LOAD_BALANCER and s.ingress_ips
                    and any(state.pool_of(ip) is not None for ip in s.ingress_ips))
    return Allocation(
        assigned={s.key: tuple(got[s.key][v] for v in wanted_families(s) if v in got[s.key]) for s in serving},
        pending={k: tuple(r.values()) for k, r in reasons.items() if r},
        cleared=cleared,
        pools={p.name: PoolUsage(p.name, {v: len(state.families[(p.name, v)].used) for v in p.families()},
                                 {v: state.families[(p.name, v)].capacity for v in p.families()})
               for p in settings.pools})


def _eligible(pool: LoadBalancerPool, service: ServiceInfo) -> bool:
    return pool.may_serve(service.namespace, dict(service.labels))


def _parsed_requests(service: ServiceInfo) -> list[IPAddress]:
    out = []
    for text in service.requested_ips:
        try:
            out.append(ipaddress.ip_address(text))
        except ValueError:
            continue
    return out


def _keep(state: _Pools, service: ServiceInfo, got: dict[int, IPAddress]) -> None:
    families = wanted_families(service)
    requested = {ip.version: ip for ip in reversed(_parsed_requests(service))}  # the first per family
    for ip in service.ingress_ips:
        if ip.version not in families or ip.version in got or ip in state.holder:
            continue
        if ip.version in requested and requested[ip.version] != ip:
            continue  # the request changed: move to the new address
        pool = state.pool_of(ip)
        if pool is not None and _eligible(pool, service):
            state.take(pool, ip, service.key)
            got[ip.version] = ip


def _request(state: _Pools, service: ServiceInfo, got: dict[int, IPAddress], reasons: dict[int, str]) -> None:
    families = wanted_families(service)
    for text in service.requested_ips:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            reasons.setdefault(0, f"requested address {text!r} is not an IP address")
            continue
        if ip.version not in families:
            reasons.setdefault(ip.version, f"requested address {ip} is {_FAMILY_NAMES[ip.version]}, not one of the "
                                           f"Service's ipFamilies ({_family_list(families)})")
            continue
        if ip.version in got or ip.version in reasons:
            continue  # kept already, or a first request of this family was refused
        pool = state.pool_of(ip)
        if pool is None:
            reasons[ip.version] = f"requested address {ip} is in no pool"
        elif not _eligible(pool, service):
            reasons[ip.version] = f"requested address {ip} is in pool {pool.name!r}, which does not serve this " \
                                  "Service (namespaces or serviceSelector)"
        elif ip in state.holder:
            reasons[ip.version] = f"requested address {ip} is already used by {state.holder[ip]}"
        else:
            state.take(pool, ip, service.key)
            got[ip.version] = ip


def _auto(state: _Pools, service: ServiceInfo, got: dict[int, IPAddress], reasons: dict[int, str]) -> None:
    families = wanted_families(service)
    if any(key not in families for key in reasons):
        return  # a malformed or wrong-family request: the Service gets what it asked for or nothing new
    requested = {ip.version for ip in _parsed_requests(service)}
    for version in families:
        if version in got or version in requested or version in reasons:
            continue
        eligible = [p for p in state.pools if p.auto_assign and version in p.families() and _eligible(p, service)]
        for pool in eligible:
            value = state.families[(pool.name, version)].lowest_free()
            if value is not None:
                ip: IPAddress = ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)
                state.take(pool, ip, service.key)
                got[version] = ip
                break
        else:
            name = _FAMILY_NAMES[version]
            reasons[version] = (f"no free {name} address: pools {', '.join(repr(p.name) for p in eligible)} are "
                                "exhausted" if eligible else
                                f"no pool with autoAssign and {name} addresses serves this Service")


def _family_list(families: tuple[int, ...]) -> str:
    return ", ".join(_FAMILY_NAMES[v] for v in families)
