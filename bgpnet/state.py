"""Desired state: from the config, this node and all Nodes, what the speaker should run (pure).

Peers and announcements are recomputed from scratch on every change — they are small — and handed to the
speaker as a whole set, which applies only the difference (MetalLB's `Session.Set`). Kernel routes come from
the incrementally maintained RIB (bgpnet.rib) instead, because they can number tens of thousands.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from bgpnet.config import AgentConfig
from bgpnet.model import BgpPeer, IPNetwork, NodeInfo
from bgpnet.policy import ImportPolicy


@dataclass(frozen=True)
class SpeakerIntent:
    peers: frozenset[BgpPeer]
    announcements: frozenset[IPNetwork]


def mesh_peers(config: AgentConfig, me: NodeInfo, nodes: Mapping[str, NodeInfo]) -> frozenset[BgpPeer]:
    """Node-to-node full mesh: an iBGP session with the cluster ASN to every other Node, once per IP family
    that both nodes have an InternalIP in (IPv4 prefixes travel on IPv4 sessions, IPv6 on IPv6)."""
    if not config.node_to_node_mesh:
        return frozenset()
    peers = set()
    for node in nodes.values():
        if node.name == me.name:
            continue
        for version in (4, 6):
            mine, theirs = me.internal_ip(version), node.internal_ip(version)
            if mine is None or theirs is None or mine == theirs:
                continue
            peers.add(BgpPeer(address=theirs, asn=config.asn, local_address=mine, local_asn=config.asn,
                              hold_time=config.hold_time, description=node.name))
    return frozenset(peers)


def speaker_intent(config: AgentConfig, me: NodeInfo | None, nodes: Mapping[str, NodeInfo]) -> SpeakerIntent:
    """Everything the speaker should do now. Without our own Node (not yet listed, or malformed) there is
    nothing to announce and no address to peer from, so the speaker idles rather than guesses."""
    if me is None:
        return SpeakerIntent(frozenset(), frozenset())
    return SpeakerIntent(mesh_peers(config, me, nodes), frozenset(me.pod_cidrs))


def import_policy(config: AgentConfig, me: NodeInfo | None) -> ImportPolicy:
    return ImportPolicy(cluster_cidrs=config.cluster_cidrs, own_cidrs=me.pod_cidrs if me else (),
                        own_asn=config.asn)


def router_id(me: NodeInfo) -> ipaddress.IPv4Address:
    """BGP identifier: the node's IPv4 InternalIP, or for an IPv6-only node a stable 32-bit value derived from
    its name (RFC 6286 only asks that it be unique within the AS)."""
    v4 = me.internal_ip(4)
    if isinstance(v4, ipaddress.IPv4Address):
        return v4
    digest = hashlib.sha256(me.name.encode()).digest()
    return ipaddress.IPv4Address(bytes([digest[0] | 1, *digest[1:4]]))
