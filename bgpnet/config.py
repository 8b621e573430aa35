"""The agent's configuration file (the ConfigMap's content), parsed once into typed, validated values.

Every field has a small validator with an exact message that names the field, so an operator who mistypes
`clusterCIDRs` or an ASN learns which line to fix instead of meeting a stack trace. Unknown keys are errors,
not silently ignored: a typo such as `nodeToNodeMeshh` would otherwise quietly change the topology.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from bgpnet.model import IPNetwork

AS_TRANS = 23456  # RFC 6793: placeholder for 4-byte ASNs on 2-byte speakers, never a real AS.
MAX_ASN = 4_294_967_295


class ConfigError(ValueError):
    """An invalid configuration value; `field` names the key as it appears in the file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CniSettings:
    """What the agent writes into its node's CNI conflist for bgpnet-cni."""

    mtu: int = 1500
    data_dir: str = "/var/lib/cni/bgpnet"
    log_file: str = ""


@dataclass(frozen=True)
class AgentConfig:
    asn: int
    cluster_cidrs: tuple[IPNetwork, ...]
    node_to_node_mesh: bool = True
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
    _reject_unknown(field + ".", value, {"mtu", "dataDir", "logFile"})
    mtu = _int_range(f"{field}.mtu", value.get("mtu", 1500), 576, 65535)
    data_dir = value.get("dataDir", CniSettings.data_dir)
    if not isinstance(data_dir, str) or not data_dir.startswith("/"):
        raise ConfigError(f"{field}.dataDir", f"must be an absolute path, got {data_dir!r}")
    log_file = value.get("logFile", "")
    if not isinstance(log_file, str) or (log_file and not log_file.startswith("/")):
        raise ConfigError(f"{field}.logFile", f"must be an absolute path, got {log_file!r}")
    return CniSettings(mtu=mtu, data_dir=data_dir, log_file=log_file)


_FIELDS = {"asn", "clusterCIDRs", "nodeToNodeMesh", "holdTime", "routeSyncPeriod", "startupGracePeriod", "cni"}


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
    return AgentConfig(
        asn=_asn("asn", raw["asn"]),
        cluster_cidrs=_cidrs("clusterCIDRs", raw["clusterCIDRs"]),
        node_to_node_mesh=_bool("nodeToNodeMesh", raw.get("nodeToNodeMesh", True)),
        hold_time=_hold_time("holdTime", raw.get("holdTime", defaults.hold_time)),
        route_sync_period=_seconds("routeSyncPeriod", raw.get("routeSyncPeriod", defaults.route_sync_period)),
        startup_grace_period=_seconds("startupGracePeriod",
                                      raw.get("startupGracePeriod", defaults.startup_grace_period)),
        cni=_cni("cni", raw.get("cni", {})),
    )


def load_config_text(text: str) -> AgentConfig:
    """Parse YAML (or JSON, a subset of YAML) text into the typed config."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("(file)", f"not valid YAML: {exc}") from None
    return parse_config(raw)
