"""The agent's configuration file (the ConfigMap's content), parsed once into typed, validated values.

Every field has a small validator with an exact message that names the field, so an operator who mistypes
`clusterCIDRs` or an ASN learns which line to fix instead of meeting a stack trace. Unknown keys are errors,
not silently ignored: a typo such as `nodeToNodeMeshh` would otherwise quietly change the topology.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from bgpnet.config_error import ConfigError
from bgpnet.lb_pools import LoadBalancerPool, parse_pools
from bgpnet.model import IPAddress, IPNetwork

__all__ = ["ConfigError"]  # re-exported: most callers import it from here

AS_TRANS = 23456  # RFC 6793: placeholder for 4-byte ASNs on 2-byte speakers, never a real AS.
MAX_ASN = 4_294_967_295


@dataclass(frozen=True)
class CniSettings:
    """What the agent writes into its node's CNI conflist: bgpnet-cni's settings, and which reference plugins
    are chained after it (portmap: a pod's hostPort; bandwidth: its ingress/egress bandwidth annotations)."""

    mtu: int = 1500
    data_dir: str = "/var/lib/cni/bgpnet"
    log_file: str = ""
    port_map: bool = True
    bandwidth: bool = True


# Node labels/annotations read live from watch events (annotation wins over a label of the same key).
NODE_ASN_KEY = "bgpnet.io/asn"
NODE_PEERS_KEY = "bgpnet.io/peers"
NODE_COMMUNITIES_KEY = "bgpnet.io/communities"
NODE_LARGE_COMMUNITIES_KEY = "bgpnet.io/large-communities"
# The same two keys as annotations of a Service tag that Service's announced addresses.
SERVICE_COMMUNITIES_KEY = NODE_COMMUNITIES_KEY
SERVICE_LARGE_COMMUNITIES_KEY = NODE_LARGE_COMMUNITIES_KEY
# Nodes with this label never announce LoadBalancer or external addresses (the upstream label service
# controllers honour: kube-controller-manager, MetalLB, Cilium).
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# The loadBalancerClass of the Services bgpnet serves (allocates and announces LoadBalancer addresses for).
LOAD_BALANCER_CLASS = "bgpnet.io/bgp"

WARN = "warn"
TEARDOWN = "teardown"
MAX_PREFIX_ACTIONS = (WARN, TEARDOWN)


@dataclass(frozen=True)
class PasswordRef:
    """Where a peer's MD5 password lives: a key of a Kubernetes Secret, or a file (e.g. a mounted Secret).
    Only the reference is configuration; the value is read at run time and never logged."""

    namespace: str = ""
    name: str = ""
    key: str = ""
    file: str = ""

    def __str__(self) -> str:
        return f"file {self.file}" if self.file else f"secret {self.namespace}/{self.name} key {self.key}"


@dataclass(frozen=True)
class ImportOptions:
    """Per-peer import policy knobs (cluster CIDRs, own CIDRs and the own-ASN loop check always apply)."""

    accept_default_route: bool = False
    max_prefixes: int = 0  # 0: no limit
    max_prefix_action: str = WARN
    # After a teardown the session stays down this long, then is re-established (BIRD's `action restart`).
    restart_after: float = 60.0


@dataclass(frozen=True)
class BfdSettings:
    """Single-hop BFD (RFC 5880/5881) towards a peer; bgpnet/bfd/ and the README's BFD section.

    300 ms x 3 declares a silently dead peer down within 900 ms (BIRD's and FRR's data-centre examples use the
    same order; RFC 7419 lists 300 ms among the common intervals): fast enough that a dead node's pods are
    unreachable for under a second instead of the 9 s hold time, slow enough that a Python process on a busy
    node never misses a packet (the BFD process runs apart from the agent; bench/bfd_detection.py measures
    it, 0 false downs during a 50,000-prefix transfer). Off by default: the peer must run BFD as well."""

    enabled: bool = False
    min_rx_ms: int = 300  # RequiredMinRxInterval: the fastest we want the peer to send
    min_tx_ms: int = 300  # DesiredMinTxInterval: the fastest we would like to send
    multiplier: int = 3  # Detect Mult: packets missed before the session is declared down


@dataclass(frozen=True)
class PeerSpec:
    """A configured (global, or per-node from an annotation) BGP peer, before it is bound to a node."""

    address: IPAddress
    asn: int
    port: int = 179
    hold_time: int | None = None  # None: the global holdTime
    multihop: int | None = None
    passive: bool = False
    password: PasswordRef | None = None
    node_selector: tuple[tuple[str, str], ...] = ()
    import_options: ImportOptions | None = None  # None: the global importPolicy
    # IP versions whose unicast prefixes the session carries (RFC 4760 multiprotocol), sorted; None: only the
    # peer address's own family, one session per family.
    families: tuple[int, ...] | None = None
    bfd: BfdSettings | None = None  # None: the global bfd settings

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.node_selector)


@dataclass(frozen=True)
class GracefulRestart:
    """BGP graceful restart (RFC 4724) in both roles; see bgpnet/stale.py and the README's Reliability section.

    `restart_time` is advertised in our OPEN: how long peers keep our routes after our session drops without a
    NOTIFICATION. 30 s covers an agent restart in a DaemonSet rollout (seconds: the image is already on the
    node) with a wide margin, while a node that really died is cleaned up after at most 30 s plus detection,
    not BGP's customary 120 s (calico#4607)."""

    enabled: bool = True
    restart_time: int = 30


@dataclass(frozen=True)
class ServiceAdvertisement:
    """Which Service addresses this node announces, by the CIDRs they may come from (Calico's
    serviceClusterIPs / serviceExternalIPs / serviceLoadBalancerIPs). Everything is off (empty) by default; an
    address outside its kind's CIDRs is never announced, so a tenant who writes an arbitrary externalIP cannot
    make the fabric route it to the cluster."""

    cluster_cidrs: tuple[IPNetwork, ...] = ()  # announced whole from every node, plus Local Services' /32s
    external_cidrs: tuple[IPNetwork, ...] = ()
    load_balancer_cidrs: tuple[IPNetwork, ...] = ()
    communities: tuple[str, ...] = ()  # added to every Service address, with the Service's own annotation
    large_communities: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.cluster_cidrs or self.external_cidrs or self.load_balancer_cidrs)


@dataclass(frozen=True)
class LoadBalancerSettings:
    """LoadBalancer address allocation (bgpnet.lb_pools, the leader-elected allocator)."""

    # Also serve LoadBalancer Services without a loadBalancerClass (as the cluster's default implementation).
    default: bool = False
    pools: tuple[LoadBalancerPool, ...] = ()

    def serves(self, load_balancer_class: str | None) -> bool:
        return load_balancer_class == LOAD_BALANCER_CLASS or (load_balancer_class is None and self.default)


@dataclass(frozen=True)
class AgentConfig:
    asn: int
    cluster_cidrs: tuple[IPNetwork, ...]
    node_to_node_mesh: bool = True
    peers: tuple[PeerSpec, ...] = ()
    communities: tuple[str, ...] = ()
    large_communities: tuple[str, ...] = ()
    import_options: ImportOptions = ImportOptions()
    # Data-centre timers: a 9 s hold time (keepalive every 3 s) notices a silent peer within 9 s, where BGP's
    # 180 s default would blackhole a dead node's pods for minutes. A crashed speaker is noticed at once anyway:
    # its TCP connection closes.
    hold_time: int = 9
    # Full re-apply of the kernel routes (kube-router's route_sync): heals a route deleted behind our back.
    route_sync_period: float = 30.0
    # After a (re)start, routes left in the kernel by the previous run are kept until every peer has sent
    # End-of-RIB or this many seconds passed, so a restart does not blackhole pods that are still reachable.
    startup_grace_period: float = 30.0
    cni: CniSettings = CniSettings()
    graceful_restart: GracefulRestart = GracefulRestart()
    # Off (0) by default: a Node NotReady for this many seconds is treated as gone (its peer and routes are
    # removed). NotReady means the kubelet stopped reporting, not that the node stopped forwarding: a kubelet
    # crash or an API partition would cut off pods that still run fine. Only for clusters that prefer a fast
    # cleanup of dead nodes to that risk.
    not_ready_grace_period: float = 0.0
    # Liveness fails when every configured peer has been down this long (bgpnet/health.py says why); 0: never.
    liveness_peers_down_after: float = 600.0
    # Masquerade pod traffic leaving the cluster CIDRs; None: on unless this node has BGP peers outside the
    # cluster (bgpnet/nat/ruleset.py says why).
    nat_outgoing: bool | None = None
    bfd: BfdSettings = BfdSettings()
    services: ServiceAdvertisement = ServiceAdvertisement()
    load_balancer: LoadBalancerSettings = LoadBalancerSettings()


def _asn(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, f"must be an integer AS number, got {value!r}")
    if not 1 <= value <= MAX_ASN or value == AS_TRANS:
        raise ConfigError(field, f"invalid AS number {value}: must be 1..{MAX_ASN} and not {AS_TRANS} (AS_TRANS)")
    return value


def _cidrs(field: str, value: Any) -> tuple[IPNetwork, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(field, "must be a non-empty list of CIDRs")
    nets: list[IPNetwork] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigError(field, f"invalid CIDR {item!r}: must be a string such as 10.244.0.0/16")
        try:
            nets.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ConfigError(field, f"invalid CIDR {item!r}: {exc}") from None
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            if a.version == b.version and a.overlaps(b):
                raise ConfigError(field, f"CIDRs {a} and {b} overlap")
    return tuple(nets)


def _optional_cidrs(field: str, value: Any) -> tuple[IPNetwork, ...]:
    return () if value in (None, []) else _cidrs(field, value)


def _services(raw: Mapping[str, Any]) -> ServiceAdvertisement:
    return ServiceAdvertisement(
        cluster_cidrs=_optional_cidrs("serviceClusterIPs", raw.get("serviceClusterIPs")),
        external_cidrs=_optional_cidrs("serviceExternalIPs", raw.get("serviceExternalIPs")),
        load_balancer_cidrs=_optional_cidrs("serviceLoadBalancerIPs", raw.get("serviceLoadBalancerIPs")),
        communities=communities("serviceCommunities", raw.get("serviceCommunities", []), large=False),
        large_communities=communities("serviceLargeCommunities", raw.get("serviceLargeCommunities", []),
                                      large=True))


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be true or false, got {value!r}")
    return value


def _int_range(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(field, f"must be an integer in {low}..{high}, got {value!r}")
    return value


def _hold_time(field: str, value: Any) -> int:
    # RFC 4271 §4.2: the hold time is 0 (no keepalives) or at least 3 seconds.
    if isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
        raise ConfigError(field, f"must be 0 or 3..65535 seconds (RFC 4271), got {value}")
    return _int_range(field, value, 0, 65535)


def _seconds(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(field, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _cni(field: str, value: Any) -> CniSettings:
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping")
    _reject_unknown(field + ".", value, {"mtu", "dataDir", "logFile", "portMap", "bandwidth"})
    mtu = _int_range(f"{field}.mtu", value.get("mtu", 1500), 576, 65535)
    data_dir = value.get("dataDir", CniSettings.data_dir)
    if not isinstance(data_dir, str) or not data_dir.startswith("/"):
        raise ConfigError(f"{field}.dataDir", f"must be an absolute path, got {data_dir!r}")
    log_file = value.get("logFile", "")
    if not isinstance(log_file, str) or (log_file and not log_file.startswith("/")):
        raise ConfigError(f"{field}.logFile", f"must be an absolute path, got {log_file!r}")
    return CniSettings(mtu=mtu, data_dir=data_dir, log_file=log_file,
                       port_map=_bool(f"{field}.portMap", value.get("portMap", True)),
                       bandwidth=_bool(f"{field}.bandwidth", value.get("bandwidth", True)))


def _string_map(field: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in value.items()):
        raise ConfigError(field, "must be a mapping of label names to string values")
    return tuple(sorted(value.items()))


def _community(field: str, value: Any, parts: int) -> str:
    """A standard (`ASN:value`, 16 bits each) or large (`ASN:data1:data2`, 32 bits each) community."""
    kind, bits = ("community", 16) if parts == 2 else ("large community", 32)
    pieces = value.split(":") if isinstance(value, str) else []
    if len(pieces) != parts or not all(p.isdigit() and int(p) < (1 << bits) for p in pieces):
        example = "64512:100" if parts == 2 else "64512:1:100"
        raise ConfigError(field, f"invalid {kind} {value!r}: must look like {example}, each part < 2^{bits}")
    return ":".join(str(int(p)) for p in pieces)


def communities(field: str, value: Any, *, large: bool) -> tuple[str, ...]:
    """A list of communities; also accepts one comma-separated string (the form a Node annotation uses)."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(field, "must be a list of communities")
    return tuple(dict.fromkeys(_community(field, v, 3 if large else 2) for v in value))


def _password(field: str, value: Any) -> PasswordRef:
    if not isinstance(value, Mapping) or len(value) != 1 or next(iter(value)) not in ("secret", "file"):
        raise ConfigError(field, "must be {secret: {namespace, name, key}} or {file: /absolute/path}; "
                                 "the password itself never goes into the config")
    if "file" in value:
        path = value["file"]
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{field}.file", f"must be an absolute path, got {path!r}")
        return PasswordRef(file=path)
    secret = value["secret"]
    if not isinstance(secret, Mapping):
        raise ConfigError(f"{field}.secret", "must be a mapping with namespace, name and key")
    _reject_unknown(f"{field}.secret.", secret, {"namespace", "name", "key"})
    parts = {}
    for key in ("namespace", "name", "key"):
        text = secret.get(key)
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{field}.secret.{key}", "is required (a non-empty string)")
        parts[key] = text
    return PasswordRef(namespace=parts["namespace"], name=parts["name"], key=parts["key"])


FAMILY_NAMES = {"ipv4": 4, "ipv6": 6}


def families(field: str, value: Any) -> tuple[int, ...]:
    """`families: [ipv4, ipv6]`: the address families one session carries, as sorted IP versions."""
    if not isinstance(value, list) or not value:
        raise ConfigError(field, f"must be a non-empty list of address families ({', '.join(FAMILY_NAMES)}), "
                                 f"got {value!r}")
    versions: list[int] = []
    for name in value:
        if not isinstance(name, str) or name not in FAMILY_NAMES:
            raise ConfigError(field, f"unknown address family {name!r} (known: {', '.join(FAMILY_NAMES)})")
        if FAMILY_NAMES[name] in versions:
            raise ConfigError(field, f"address family {name!r} listed twice")
        versions.append(FAMILY_NAMES[name])
    return tuple(sorted(versions))


_IMPORT_FIELDS = {"acceptDefaultRoute", "maxPrefixes", "maxPrefixAction", "restartAfter"}


def import_options(field: str, value: Any, base: ImportOptions) -> ImportOptions:
    """Import policy knobs; unspecified ones come from `base` (the global policy for a peer's override)."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping")
    _reject_unknown(field + ".", value, _IMPORT_FIELDS)
    action = value.get("maxPrefixAction", base.max_prefix_action)
    if action not in MAX_PREFIX_ACTIONS:
        raise ConfigError(f"{field}.maxPrefixAction", f"must be one of {', '.join(MAX_PREFIX_ACTIONS)}, "
                                                      f"got {action!r}")
    return ImportOptions(
        accept_default_route=_bool(f"{field}.acceptDefaultRoute",
                                   value.get("acceptDefaultRoute", base.accept_default_route)),
        max_prefixes=_int_range(f"{field}.maxPrefixes", value.get("maxPrefixes", base.max_prefixes),
                                0, 10_000_000),
        max_prefix_action=action,
        restart_after=_seconds(f"{field}.restartAfter", value.get("restartAfter", base.restart_after)),
    )


_BFD_FIELDS = {"enabled", "minRx", "minTx", "multiplier"}


def bfd_settings(field: str, value: Any, base: BfdSettings) -> BfdSettings:
    """`bfd: {enabled, minRx, minTx, multiplier}` (intervals in milliseconds); unspecified fields come from
    `base` (the global settings for a peer's override)."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping with enabled, minRx, minTx and multiplier")
    _reject_unknown(field + ".", value, _BFD_FIELDS)
    # 10 ms is as fast as a user-space sender keeps time on a loaded node; RFC 5880's field allows more, but a
    # faster rate would only produce false downs. Above 60 s BGP's own hold timer is the faster detector.
    return BfdSettings(
        enabled=_bool(f"{field}.enabled", value.get("enabled", base.enabled)),
        min_rx_ms=_int_range(f"{field}.minRx", value.get("minRx", base.min_rx_ms), 10, 60_000),
        min_tx_ms=_int_range(f"{field}.minTx", value.get("minTx", base.min_tx_ms), 10, 60_000),
        multiplier=_int_range(f"{field}.multiplier", value.get("multiplier", base.multiplier), 2, 255))


_PEER_FIELDS = {"address", "asn", "port", "holdTime", "keepaliveTime", "multihop", "passive", "password",
                "nodeSelector", "importPolicy", "families", "bfd"}


def parse_peer(field: str, value: Any, *, allow_selector: bool = True,
               bfd_base: BfdSettings = BfdSettings()) -> PeerSpec:
    """One entry of `peers:` (or of a Node's `bgpnet.io/peers` annotation, which has no nodeSelector); its
    `bfd` fields override `bfd_base` (the global settings) one by one."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping with at least address and asn")
    known = _PEER_FIELDS if allow_selector else _PEER_FIELDS - {"nodeSelector"}
    _reject_unknown(field + ".", value, known)
    for required in ("address", "asn"):
        if required not in value:
            raise ConfigError(f"{field}.{required}", "is required")
    text = value["address"]
    try:
        address = ipaddress.ip_address(text) if isinstance(text, str) else None
    except ValueError:
        address = None
    if address is None:
        raise ConfigError(f"{field}.address", f"invalid BGP peer address {text!r}")
    hold_time = None
    if "holdTime" in value:
        hold_time = _hold_time(f"{field}.holdTime", value["holdTime"])
    if "keepaliveTime" in value:
        keepalive = _int_range(f"{field}.keepaliveTime", value["keepaliveTime"], 1, 21845)
        # ExaBGP (like most speakers) sends keepalives at a third of the negotiated hold time and has no
        # separate knob, so a keepalive is accepted only as another way of writing holdTime/3.
        if hold_time is None:
            hold_time = keepalive * 3
        elif keepalive * 3 != hold_time:
            raise ConfigError(f"{field}.keepaliveTime",
                              f"must be holdTime/3 ({hold_time}/3): the speaker derives keepalives from the "
                              f"hold time, got {keepalive}")
    multihop = None
    if "multihop" in value:
        multihop = _int_range(f"{field}.multihop", value["multihop"], 1, 255)
    return PeerSpec(
        address=address,
        asn=_asn(f"{field}.asn", value["asn"]),
        port=_int_range(f"{field}.port", value.get("port", 179), 1, 65535),
        hold_time=hold_time,
        multihop=multihop,
        passive=_bool(f"{field}.passive", value.get("passive", False)),
        password=_password(f"{field}.password", value["password"]) if "password" in value else None,
        node_selector=_string_map(f"{field}.nodeSelector", value.get("nodeSelector", {})),
        import_options=(import_options(f"{field}.importPolicy", value["importPolicy"], ImportOptions())
                        if "importPolicy" in value else None),
        families=families(f"{field}.families", value["families"]) if "families" in value else None,
        bfd=bfd_settings(f"{field}.bfd", value["bfd"], bfd_base) if "bfd" in value else None,
    )


def _peers(field: str, value: Any, bfd_base: BfdSettings) -> tuple[PeerSpec, ...]:
    if not isinstance(value, list):
        raise ConfigError(field, "must be a list of peers")
    return tuple(parse_peer(f"{field}[{i}]", item, bfd_base=bfd_base) for i, item in enumerate(value))


_FIELDS = {"asn", "clusterCIDRs", "nodeToNodeMesh", "holdTime", "keepaliveTime", "routeSyncPeriod",
           "startupGracePeriod", "cni", "peers", "communities", "largeCommunities", "importPolicy",
           "gracefulRestart", "notReadyGracePeriod", "livenessPeersDownAfter", "natOutgoing", "bfd",
           "serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs", "serviceCommunities",
           "serviceLargeCommunities", "defaultLoadBalancer", "loadBalancerPools"}


def _graceful_restart(field: str, value: Any) -> GracefulRestart:
    if not isinstance(value, Mapping):
        raise ConfigError(field, "must be a mapping with enabled and restartTime")
    _reject_unknown(field + ".", value, {"enabled", "restartTime"})
    # The capability's Restart Time is a 12-bit field (RFC 4724 §3).
    return GracefulRestart(
        enabled=_bool(f"{field}.enabled", value.get("enabled", True)),
        restart_time=_int_range(f"{field}.restartTime", value.get("restartTime", GracefulRestart.restart_time),
                                1, 4095))


def _global_hold_time(raw: Mapping[str, Any], default: int) -> int:
    hold_time = _hold_time("holdTime", raw.get("holdTime", default))
    if "keepaliveTime" in raw:
        keepalive = _int_range("keepaliveTime", raw["keepaliveTime"], 1, 21845)
        if "holdTime" not in raw:
            return _hold_time("holdTime", keepalive * 3)
        if keepalive * 3 != hold_time:
            raise ConfigError("keepaliveTime", f"must be holdTime/3 ({hold_time}/3): the speaker derives "
                                               f"keepalives from the hold time, got {keepalive}")
    return hold_time


def _non_negative_seconds(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(field, f"must be 0 (off) or a positive number of seconds, got {value!r}")
    return float(value)


def _reject_unknown(prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    for key in raw:
        if key not in known:
            raise ConfigError(f"{prefix}{key}", f"unknown field (known: {', '.join(sorted(known))})")


def parse_config(raw: Any) -> AgentConfig:
    """Validate a decoded config document and return the typed config; raises ConfigError."""
    if not isinstance(raw, Mapping):
        raise ConfigError("(top level)", "the config must be a mapping of fields")
    _reject_unknown("", raw, _FIELDS)
    for required in ("asn", "clusterCIDRs"):
        if required not in raw:
            raise ConfigError(required, "is required")
    defaults = AgentConfig(asn=1, cluster_cidrs=())
    global_import = import_options("importPolicy", raw.get("importPolicy", {}), ImportOptions())
    global_bfd = bfd_settings("bfd", raw.get("bfd", {}), BfdSettings())
    # A peer's importPolicy overrides the global one field by field.
    peers = tuple(
        replace(p, import_options=import_options(f"peers[{i}].importPolicy",
                                                 raw["peers"][i]["importPolicy"], global_import))
        if p.import_options is not None else p
        for i, p in enumerate(_peers("peers", raw.get("peers", []), global_bfd)))
    return AgentConfig(
        asn=_asn("asn", raw["asn"]),
        cluster_cidrs=_cidrs("clusterCIDRs", raw["clusterCIDRs"]),
        node_to_node_mesh=_bool("nodeToNodeMesh", raw.get("nodeToNodeMesh", True)),
        peers=peers,
        communities=communities("communities", raw.get("communities", []), large=False),
        large_communities=communities("largeCommunities", raw.get("largeCommunities", []), large=True),
        import_options=global_import,
        hold_time=_global_hold_time(raw, defaults.hold_time),
        route_sync_period=_seconds("routeSyncPeriod", raw.get("routeSyncPeriod", defaults.route_sync_period)),
        startup_grace_period=_seconds("startupGracePeriod",
                                      raw.get("startupGracePeriod", defaults.startup_grace_period)),
        cni=_cni("cni", raw.get("cni", {})),
        graceful_restart=_graceful_restart("gracefulRestart", raw.get("gracefulRestart", {})),
        not_ready_grace_period=_non_negative_seconds("notReadyGracePeriod", raw.get("notReadyGracePeriod", 0)),
        liveness_peers_down_after=_non_negative_seconds("livenessPeersDownAfter",
                                                        raw.get("livenessPeersDownAfter", 600)),
        nat_outgoing=None if raw.get("natOutgoing") is None else _bool("natOutgoing", raw["natOutgoing"]),
        bfd=global_bfd,
        services=_services(raw),
        load_balancer=LoadBalancerSettings(
            default=_bool("defaultLoadBalancer", raw.get("defaultLoadBalancer", False)),
            pools=parse_pools("loadBalancerPools", raw.get("loadBalancerPools", []))),
    )


def load_config_text(text: str) -> AgentConfig:
    """Parse YAML (or JSON, a subset of YAML) text into the typed config."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("(file)", f"not valid YAML: {yaml_problem(exc)}") from None
    return parse_config(raw)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line (its own text spans several, with a snippet of the file): what is wrong and
    where, so the agent's log keeps one record per error."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())
