"""LoadBalancer address pools (`loadBalancerPools` in the config): parsed and validated (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bgpnet.config_error import ConfigError
from bgpnet.model import IPAddress


@dataclass(frozen=True)
class LoadBalancerPool:
    """One pool: inclusive address ranges (a CIDR is one range), which Services may draw from it."""

    name: str
    ranges: tuple[tuple[IPAddress, IPAddress], ...]
    auto_assign: bool = True
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    service_selector: tuple[tuple[str, str], ...] = ()  # matchLabels; empty: every Service


def parse_pools(field: str, value: Any) -> tuple[LoadBalancerPool, ...]:
    if value in (None, []):
        return ()
    raise ConfigError(field, "not supported yet")
