"""The lab's address and ASN plan: a pure function of (node count, pods per node, mode, ToR kind).

Everything that names an address or an AS number lives here, so the plan can be unit-tested, printed as JSON
and reused by the test harness without creating a single namespace. The layout mirrors one rack:

- one L2 segment, 172.31.0.0/24, a Linux bridge in the "segment" namespace, which also hosts the Kubernetes
  API stand-in on 172.31.0.254 (the nodes' default gateway, so proxy ARP for pods' 169.254.1.1 works);
- the ToR router on 172.31.0.1, AS 65000 (only in `tor` mode);
- node i on 172.31.0.(10+i) with pod CIDR 10.244.i.0/24. In `mesh` mode every node is in the cluster AS 64512
  (iBGP full mesh); in `tor` mode node i has its own AS 65000+i (eBGP to the ToR, "AS per node"), so the
  ToR's re-advertisement of node 1's route to node 2 carries an AS path without node 2's AS and passes its
  loop check.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Mode = Literal["mesh", "tor"]
TorKind = Literal["bird", "external"]

SEGMENT = ipaddress.ip_network("172.31.0.0/24")
API_IP = "172.31.0.254"
TOR_IP = "172.31.0.1"
TOR_ASN = 65000
CLUSTER_ASN = 64512
CLUSTER_CIDR = "10.244.0.0/16"
NODE_IP_OFFSET = 10
MAX_NODES = 200  # node i uses 172.31.0.(10+i) and 10.244.i.0/24; ASN 65000+i stays in the private range
MAX_PODS_PER_NODE = 50
# Per-node AS number on the Node object (issue 4: the agent reads it instead of the config's `asn`).
ASN_LABEL = "bgpnet.io/asn"


class PlanError(ValueError):
    """A lab size or mode that cannot be built; the message names the option."""


@dataclass(frozen=True)
class NodePlan:
    index: int
    name: str
    ip: str
    asn: int
    pod_cidr: str
    pods: int

    @property
    def labels(self) -> dict[str, str]:
        return {"kubernetes.io/hostname": self.name, ASN_LABEL: str(self.asn)}


@dataclass(frozen=True)
class TorPlan:
    kind: TorKind
    ip: str
    asn: int


@dataclass(frozen=True)
class LabPlan:
    mode: Mode
    nodes: tuple[NodePlan, ...]
    tor: TorPlan | None
    cluster_asn: int = CLUSTER_ASN
    cluster_cidr: str = CLUSTER_CIDR
    segment: str = str(SEGMENT)
    api_ip: str = API_IP


def node_ip(index: int) -> str:
    return str(SEGMENT.network_address + NODE_IP_OFFSET + index)


def pod_cidr(index: int) -> str:
    return f"10.244.{index}.0/24"


def plan_lab(nodes: int, pods_per_node: int = 2, mode: Mode = "mesh", tor: TorKind = "bird") -> LabPlan:
    """The whole lab as values; raises PlanError for sizes the address plan cannot hold."""
    if not 1 <= nodes <= MAX_NODES:
        raise PlanError(f"--nodes must be 1..{MAX_NODES}, got {nodes}")
    if not 0 <= pods_per_node <= MAX_PODS_PER_NODE:
        raise PlanError(f"--pods-per-node must be 0..{MAX_PODS_PER_NODE}, got {pods_per_node}")
    if mode not in ("mesh", "tor"):
        raise PlanError(f"--mode must be mesh or tor, got {mode!r}")
    if tor not in ("bird", "external"):
        raise PlanError(f"--tor must be bird or external, got {tor!r}")
    node_plans = tuple(
        NodePlan(index=i, name=f"node{i}", ip=node_ip(i), asn=CLUSTER_ASN if mode == "mesh" else TOR_ASN + i,
                 pod_cidr=pod_cidr(i), pods=pods_per_node)
        for i in range(1, nodes + 1))
    tor_plan = TorPlan(kind=tor, ip=TOR_IP, asn=TOR_ASN) if mode == "tor" else None
    return LabPlan(mode=mode, nodes=node_plans, tor=tor_plan)


# Every lab node runs BFD with its peers (the ToR, or the other nodes on the segment): 300 ms x 3, the defaults.
LAB_BFD = {"bfd": {"enabled": True}}


# With a ToR, the lab announces Service addresses and allocates LoadBalancer ones, so a newcomer sees a
# LoadBalancer Service in the ToR's table. 198.51.100.0/24 is TEST-NET-2 (documentation space): it is routed only
# between the lab's namespaces. 10.96.0.0/16 is the API stand-in's Service CIDR (its --service-cidr default).
LAB_SERVICE_CIDR = "10.96.0.0/16"
LAB_LOAD_BALANCER_CIDR = "198.51.100.0/24"
LAB_SERVICES = {"serviceClusterIPs": [LAB_SERVICE_CIDR], "serviceLoadBalancerIPs": [LAB_LOAD_BALANCER_CIDR],
                "loadBalancerPools": [{"name": "lab", "addresses": ["198.51.100.10-198.51.100.99"]}]}


def node_config(plan: LabPlan) -> dict:
    """The agent config fragment of every lab node: BFD on, and with a ToR, peering with it instead of the mesh
    and announcing Service addresses."""
    if plan.tor is None:
        return dict(LAB_BFD)
    return {**LAB_BFD, **tor_peer_config(plan.tor), **LAB_SERVICES}


def tor_peer_config(tor: TorPlan) -> dict:
    """The agent config fragment that makes a node peer with the ToR instead of the other nodes.

    The one place the lab says how a ToR peer is configured, so the lab follows the agent's config schema in
    one edit. Field names follow issue 4 (global peers in the agent config)."""
    return {"nodeToNodeMesh": False, "peers": [{"address": tor.ip, "asn": tor.asn}]}


def describe_plan(plan: LabPlan) -> dict:
    """The plan as plain JSON values (the part of `--json` that does not depend on the running lab)."""
    return {
        "mode": plan.mode,
        "segment": {"subnet": plan.segment, "gateway": plan.api_ip},
        "clusterASN": plan.cluster_asn,
        "clusterCIDR": plan.cluster_cidr,
        "tor": None if plan.tor is None else {"kind": plan.tor.kind, "address": plan.tor.ip, "asn": plan.tor.asn},
        "nodes": [{"name": n.name, "address": n.ip, "asn": n.asn, "podCIDR": n.pod_cidr} for n in plan.nodes],
    }
