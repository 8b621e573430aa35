"""The strategies of the stand-in's kinds, wired with the cluster's configuration (service CIDRs, NodePorts)."""

from __future__ import annotations

import random

from .endpointslices import EndpointSliceStrategy
from .ipalloc import IpRange, PortRange
from .leases import LeaseStrategy
from .resources import NODES
from .services import ServiceStrategy
from .strategy import NodeStrategy, Strategy


def strategies(service_cidrs: tuple[IpRange, ...], node_ports: PortRange, rng: random.Random | None = None
               ) -> dict[str, Strategy]:
    """Resource key -> strategy for every kind that is not plain generic storage."""
    kinds: list[Strategy] = [NodeStrategy(NODES), ServiceStrategy(service_cidrs, node_ports, rng),
                             EndpointSliceStrategy(), LeaseStrategy()]
    return {s.resource.key: s for s in kinds}
