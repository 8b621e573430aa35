"""Which Service addresses this node announces, decided per Service (pure), and kept incrementally.

The rules (Calico's, MetalLB's and kube-proxy's, which operators already know):
- `serviceClusterIPs`: the Service CIDRs themselves, as aggregates, from every node: kube-proxy on any node
  forwards any ClusterIP. A Service with `internalTrafficPolicy: Local` or `externalTrafficPolicy: Local`
  additionally gets its ClusterIP's /32 (/128) from the nodes with a ready local endpoint only: the more
  specific route steers the fabric to those nodes (Calico's behaviour).
- `serviceExternalIPs`: each `spec.externalIPs` address inside these CIDRs; any other address is ignored and
  counted, so a tenant cannot make the fabric route arbitrary addresses into the cluster.
- LoadBalancer addresses (`status.loadBalancer.ingress[].ip`) of the Services bgpnet serves (its
  loadBalancerClass, or none when it is the default), inside `serviceLoadBalancerIPs`.
- External and LoadBalancer addresses follow `externalTrafficPolicy`: Cluster → from every eligible node;
  Local → only from nodes with a ready, non-terminating local endpoint (kube-proxy drops Local traffic on a
  node without one). Nodes labelled `node.kubernetes.io/exclude-from-external-load-balancers` announce
  neither.
- Every Service address carries `serviceCommunities` plus the Service's own `bgpnet.io/communities`
  annotation. Service addresses go to configured peers (routers) only, never to mesh peers: every node's
  kube-proxy serves them itself.

`ServiceTable` keeps the decision per Service, so one EndpointSlice change re-decides one Service, not all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_network

from bgpnet.config import (
    EXCLUDE_FROM_LB_LABEL,
    SERVICE_COMMUNITIES_KEY,
    SERVICE_LARGE_COMMUNITIES_KEY,
    AgentConfig,
    ConfigError,
    communities,
)
from bgpnet.model import Announcement, IPAddress, IPNetwork, NodeInfo, ServiceInfo

CLUSTER_CIDR = "cluster-cidr"
CLUSTER_IP = "cluster-ip"
EXTERNAL_IP = "external-ip"
LOAD_BALANCER = "load-balancer"
KINDS = (CLUSTER_CIDR, CLUSTER_IP, EXTERNAL_IP, LOAD_BALANCER)

# Why an address of a Service is not announced although it has one (bounded labels for the metric).
OUTSIDE_EXTERNAL_CIDRS = "external-ip-not-allowed"
OUTSIDE_LOAD_BALANCER_CIDRS = "load-balancer-ip-not-allowed"
BAD_COMMUNITIES = "bad-communities-annotation"
IGNORE_REASONS = (OUTSIDE_EXTERNAL_CIDRS, OUTSIDE_LOAD_BALANCER_CIDRS, BAD_COMMUNITIES)


@dataclass(frozen=True)
class ServiceAddress:
    """One address this node announces for one Service (or, for a Service CIDR, for all of them)."""

    prefix: IPNetwork
    kind: str
    service: str = ""  # namespace/name; "" for a Service CIDR
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceDecision:
    addresses: tuple[ServiceAddress, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()  # (reason, address or annotation)


def host_prefix(ip: IPAddress) -> IPNetwork:
    return ip_network(ip)  # /32 or /128


def excluded(me: NodeInfo) -> bool:
    """The upstream label: its presence, whatever its value, keeps external traffic away from the node."""
    return me.label(EXCLUDE_FROM_LB_LABEL) is not None


def decide(config: AgentConfig, me: NodeInfo, service: ServiceInfo, local_ready: bool) -> ServiceDecision:
    """The addresses this node announces for one Service, and those it ignores with why."""
    wanted = config.services
    ignored: list[tuple[str, str]] = []
    tags = _communities(config, service, ignored)
    found: list[tuple[IPAddress, str]] = []
    if service.internal_local or service.external_local:
        if local_ready:
            found += [(ip, CLUSTER_IP) for ip in service.cluster_ips if _inside(ip, wanted.cluster_cidrs)]
    external_ok = not excluded(me) and (local_ready or not service.external_local)
    for ip in service.external_ips:
        if not _inside(ip, wanted.external_cidrs):
            if wanted.external_cidrs:
                ignored.append((OUTSIDE_EXTERNAL_CIDRS, str(ip)))
        elif external_ok:
            found.append((ip, EXTERNAL_IP))
    if service.type == "LoadBalancer" and config.load_balancer.serves(service.load_balancer_class):
        for ip in service.ingress_ips:
            if not _inside(ip, wanted.load_balancer_cidrs):
                if wanted.load_balancer_cidrs:
                    ignored.append((OUTSIDE_LOAD_BALANCER_CIDRS, str(ip)))
            elif external_ok:
                found.append((ip, LOAD_BALANCER))
    return ServiceDecision(tuple(ServiceAddress(host_prefix(ip), kind, service.key, *tags) for ip, kind in found),
                           tuple(ignored))


def cidr_addresses(config: AgentConfig) -> tuple[ServiceAddress, ...]:
    """The Service CIDRs, announced whole from every node."""
    return tuple(ServiceAddress(cidr, CLUSTER_CIDR, "", config.services.communities,
                                config.services.large_communities) for cidr in config.services.cluster_cidrs)


def _inside(ip: IPAddress, cidrs: Iterable[IPNetwork]) -> bool:
    return any(ip.version == cidr.version and ip in cidr for cidr in cidrs)


def _communities(config: AgentConfig, service: ServiceInfo, ignored: list[tuple[str, str]]
                 ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    standard, large = config.services.communities, config.services.large_communities
    for key, is_large in ((SERVICE_COMMUNITIES_KEY, False), (SERVICE_LARGE_COMMUNITIES_KEY, True)):
        text = service.annotation(key)
        if not text:
            continue
        try:
            extra = communities(key, text, large=is_large)
        except ConfigError:
            ignored.append((BAD_COMMUNITIES, key))
            continue
        if is_large:
            large = tuple(dict.fromkeys(large + extra))
        else:
            standard = tuple(dict.fromkeys(standard + extra))
    return standard, large


def merge(addresses: Iterable[ServiceAddress]) -> Announcement:
    """One prefix announced for several Services (two Services sharing an external IP) is one route; it
    carries the union of their communities, in a stable order."""
    items = list(addresses)
    return Announcement(items[0].prefix,
                        tuple(sorted({c for a in items for c in a.communities})),
                        tuple(sorted({c for a in items for c in a.large_communities})), to_mesh=False)


class ServiceTable:
    """The Services and local-endpoint facts this node knows, with each Service's decision kept, so a change
    of one Service or one EndpointSlice re-decides that Service alone. Not thread-safe: the agent guards it.
    """

    def __init__(self) -> None:
        self._services: dict[str, ServiceInfo] = {}
        self._local: dict[str, bool] = {}
        self._decisions: dict[str, ServiceDecision] = {}
        # prefix -> the addresses (of one or more Services) that announce it
        self._by_prefix: dict[IPNetwork, dict[str, ServiceAddress]] = {}
        self._cidrs: tuple[ServiceAddress, ...] = ()
        self._config: AgentConfig | None = None
        self._me: NodeInfo | None = None
        self._node_facts: tuple[bool, bool] = (False, False)  # (own Node known, excluded): all `decide` reads
        self._announcements: frozenset[Announcement] | None = frozenset()
        self.decisions_made = 0  # how many per-Service decisions were computed (bench, tests)

    def update(self, config: AgentConfig, me: NodeInfo | None, services: Mapping[str, ServiceInfo | None],
               local: Mapping[str, bool]) -> bool:
        """Apply changed Services (None: deleted) and local-endpoint facts; True if any announcement changed.
        A changed config or own Node (labels, e.g. the exclusion label) re-decides every Service."""
        for key, service in services.items():
            if service is None:
                self._services.pop(key, None)
            else:
                self._services[key] = service
        for key, ready in local.items():
            if ready:
                self._local[key] = True
            else:
                self._local.pop(key, None)
        facts = (me is not None, me is not None and excluded(me))
        self._me = me
        if config is not self._config or facts != self._node_facts:
            self._config, self._node_facts = config, facts
            self._cidrs = cidr_addresses(config) if me is not None else ()
            changed_keys: Iterable[str] = set(self._decisions) | set(self._services)
            everything = True
        else:
            changed_keys = set(services) | set(local)
            everything = False
        changed = everything
        for key in changed_keys:
            changed |= self._redecide(key)
        if changed:
            self._announcements = None
        return changed

    def _redecide(self, key: str) -> bool:
        service = self._services.get(key)
        old = self._decisions.pop(key, ServiceDecision())
        new = ServiceDecision()
        if service is not None and self._me is not None and self._config is not None:
            new = decide(self._config, self._me, service, self._local.get(key, False))
            self.decisions_made += 1
        if new.addresses or new.ignored:
            self._decisions[key] = new
        if new.addresses == old.addresses:
            return False
        for address in old.addresses:
            holders = self._by_prefix.get(address.prefix, {})
            holders.pop(key, None)
            if not holders:
                self._by_prefix.pop(address.prefix, None)
        for address in new.addresses:
            self._by_prefix.setdefault(address.prefix, {})[key] = address
        return True

    def announcements(self) -> frozenset[Announcement]:
        """Every Service address to announce (cached until the next change)."""
        if self._announcements is None:
            merged = {p: merge(holders.values()) for p, holders in self._by_prefix.items()}
            for address in self._cidrs:
                merged.setdefault(address.prefix, merge([address]))
            self._announcements = frozenset(merged.values())
        return self._announcements

    def addresses(self) -> tuple[ServiceAddress, ...]:
        """Every announced address with its kind and Service, for status and metrics."""
        out = list(self._cidrs)
        for holders in self._by_prefix.values():
            out.extend(holders.values())
        return tuple(sorted(out, key=lambda a: (a.prefix.version, a.prefix.network_address.packed,
                                                a.prefix.prefixlen, a.service)))

    def ignored(self) -> Counter[str]:
        """Addresses (or annotations) of current Services that are not announced, by reason."""
        return Counter(reason for d in self._decisions.values() for reason, _ in d.ignored)

    def ignored_details(self) -> tuple[tuple[str, str, str], ...]:
        """(service, reason, what) for status."""
        return tuple(sorted((key, reason, what) for key, d in self._decisions.items() for reason, what in d.ignored))

    def __len__(self) -> int:
        return len(self._services)

    def local_endpoints(self) -> int:
        return len(self._local)
