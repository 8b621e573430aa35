"""Desired state: from the config, this node and all Nodes, what the speaker should run (pure).

Peers and announcements are recomputed from scratch on every change — they are small — and handed to the
speaker as a whole set, which applies only the difference (MetalLB's `Session.Set`). Kernel routes come from
the incrementally maintained RIB (bgpnet.rib) instead, because they can number tens of thousands.

Three kinds of peer, any mix of them:
- mesh peers: every other Node of the same ASN (iBGP), when `nodeToNodeMesh` is on. With AS per rack the
  mesh therefore stays inside each rack, as in Calico's "AS per rack" design;
- global peers (`peers:` in the config), optionally only for Nodes whose labels match a `nodeSelector`
  (per-rack ToRs);
- per-node peers from the Node's `bgpnet.io/peers` annotation.
The node's ASN is its `bgpnet.io/asn` annotation or label, else the cluster ASN; that one value covers the
three ASN models (one cluster ASN with iBGP to a route-reflecting ToR, AS per rack, AS per node).

Everything the node or the kernel has to supply is an input, never a lookup: the source address the kernel
would use towards each peer (`sources`, needed for `next-hop self`) and the MD5 passwords (`passwords`).
`required_lookups` says which of them the agent must fetch. A peer whose password is unavailable is left out
(a session without its MD5 key would be refused by the router anyway) and reported in `problems`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from bgpnet.config import (
    NODE_ASN_KEY,
    NODE_COMMUNITIES_KEY,
    NODE_LARGE_COMMUNITIES_KEY,
    NODE_PEERS_KEY,
    AgentConfig,
    BfdSettings,
    ConfigError,
    ImportOptions,
    PasswordRef,
    PeerSpec,
    communities,
    import_options,
    parse_peer,
)
from bgpnet.model import Announcement, BfdPeer, BgpPeer, IPAddress, Md5Password, NodeInfo
from bgpnet.policy import ImportPolicy, NodeOrigin, OriginTable


@dataclass(frozen=True)
class SpeakerIntent:
    peers: frozenset[BgpPeer]
    announcements: frozenset[Announcement]
    # The import policy of every peer, by address (mesh peers share the global one).
    policies: tuple[tuple[IPAddress, ImportPolicy], ...] = ()
    # Configuration that could not be used (bad annotations, missing passwords); logged by the agent.
    problems: tuple[str, ...] = field(default=(), compare=False)
    # BFD sessions to run, for every peer with BFD enabled, also those left out of `peers` for now (a BFD
    # session that went down keeps running: its coming back up is what brings the BGP session back).
    bfd: frozenset[BfdPeer] = frozenset()

    def policy_for(self, peer: IPAddress) -> ImportPolicy | None:
        return dict(self.policies).get(peer)


def node_value(node: NodeInfo, key: str) -> str | None:
    """A `bgpnet.io/` setting of a Node: its annotation, else its label."""
    value = node.annotation(key)
    return value if value is not None else node.label(key)


def node_asn(config: AgentConfig, node: NodeInfo, problems: list[str] | None = None) -> int:
    text = node_value(node, NODE_ASN_KEY)
    if text is None:
        return config.asn
    try:
        asn = int(text.strip())
        if not 1 <= asn <= 4_294_967_295 or asn == 23456:
            raise ValueError
    except ValueError:
        if problems is not None:
            problems.append(f'node "{node.name}": invalid {NODE_ASN_KEY} {text!r}; using the cluster ASN '
                            f"{config.asn}")
        return config.asn
    return asn


def mesh_peers(config: AgentConfig, me: NodeInfo, nodes: Mapping[str, NodeInfo]) -> frozenset[BgpPeer]:
    """Node-to-node full mesh: an iBGP session to every other Node of the same ASN, once per IP family that
    both nodes have an InternalIP in (IPv4 prefixes travel on IPv4 sessions, IPv6 on IPv6)."""
    if not config.node_to_node_mesh:
        return frozenset()
    asn = node_asn(config, me)
    peers = set()
    for node in nodes.values():
        if node.name == me.name or node_asn(config, node) != asn:
            continue
        for version in (4, 6):
            mine, theirs = me.internal_ip(version), node.internal_ip(version)
            if mine is None or theirs is None or mine == theirs:
                continue
            # Only the node with the lower address connects; the other waits (passive). Two ExaBGPs that
            # connect to each other at once hit a collision (RFC 4271 §6.8) that ExaBGP 4.2.25 mishandles
            # ('NoneType' object has no attribute 'router_id' in Peer.handle_connection), leaving the
            # session down for good. One initiator per pair means no collision.
            peers.add(BgpPeer(address=theirs, asn=asn, local_address=mine, local_asn=asn,
                              hold_time=config.hold_time, description=node.name,
                              passive=mine.packed > theirs.packed, mesh=True))
    return frozenset(peers)


def node_peer_specs(config: AgentConfig, me: NodeInfo, problems: list[str] | None = None
                    ) -> tuple[PeerSpec, ...]:
    """The configured (non-mesh) peers of this node: global peers whose nodeSelector matches its labels,
    then the peers of its `bgpnet.io/peers` annotation (a JSON list; an annotation peer replaces a global
    peer of the same address)."""
    labels = dict(me.labels)
    specs = {p.address: p for p in config.peers if p.selects(labels)}
    text = me.annotation(NODE_PEERS_KEY)
    if text:
        try:
            raw = json.loads(text)
            if not isinstance(raw, list):
                raise ConfigError(NODE_PEERS_KEY, "must be a JSON list of peers")
            for i, item in enumerate(raw):
                spec = parse_peer(f"{NODE_PEERS_KEY}[{i}]", item, allow_selector=False,
                                  bfd_base=config.bfd)
                if spec.import_options is not None:
                    spec = _with_options(spec, import_options(f"{NODE_PEERS_KEY}[{i}].importPolicy",
                                                              item["importPolicy"], config.import_options))
                specs[spec.address] = spec
        except (ValueError, ConfigError) as exc:  # json.JSONDecodeError is a ValueError
            if problems is not None:
                problems.append(f'node "{me.name}": annotation {NODE_PEERS_KEY} ignored: {exc}')
    return tuple(specs.values())


def _with_options(spec: PeerSpec, options: ImportOptions) -> PeerSpec:
    return replace(spec, import_options=options)


def required_lookups(config: AgentConfig, me: NodeInfo | None
                     ) -> tuple[frozenset[IPAddress], frozenset[PasswordRef]]:
    """What the agent must find out before `speaker_intent`: the source address towards each configured
    peer (from the kernel's routes) and every referenced MD5 password."""
    if me is None:
        return frozenset(), frozenset()
    specs = node_peer_specs(config, me)
    return (frozenset(s.address for s in specs),
            frozenset(s.password for s in specs if s.password is not None))


def other_family_lookups(config: AgentConfig, me: NodeInfo | None) -> dict[IPAddress, int]:
    """The configured peers whose session carries the family other than its own, with that IP version: the
    agent looks up this node's address of that version on the interface towards each (`other_sources`)."""
    if me is None:
        return {}
    return {s.address: other_version(s.address.version) for s in node_peer_specs(config, me)
            if s.families is not None and other_version(s.address.version) in s.families}


def other_version(version: int) -> int:
    return 6 if version == 4 else 4


def configured_peers(config: AgentConfig, me: NodeInfo, *, sources: Mapping[IPAddress, IPAddress],
                     passwords: Mapping[PasswordRef, Md5Password], problems: list[str],
                     other_sources: Mapping[IPAddress, IPAddress] | None = None
                     ) -> list[tuple[BgpPeer, ImportOptions, BfdSettings]]:
    """Global and per-node peers bound to this node: its ASN as local AS, the kernel's source address
    towards the peer as local address (else the node's InternalIP of that family), the resolved password,
    and for a multiprotocol session the next hop of the other family (see `_families`)."""
    asn = node_asn(config, me, problems)
    out = []
    for spec in node_peer_specs(config, me, problems):
        local = sources.get(spec.address) or me.internal_ip(spec.address.version)
        if local is None or local.version != spec.address.version:
            problems.append(f"peer {spec.address}: this node has no IPv{spec.address.version} address to "
                            "peer from")
            continue
        md5 = None
        if spec.password is not None:
            md5 = passwords.get(spec.password)
            if md5 is None:
                problems.append(f"peer {spec.address}: MD5 password ({spec.password}) unavailable; "
                                "session not configured")
                continue
        versions, other_next_hop = _families(me, spec, (other_sources or {}).get(spec.address), problems)
        if not versions:
            problems.append(f"peer {spec.address}: no address family left to carry; session not configured")
            continue
        peer = BgpPeer(address=spec.address, asn=spec.asn, local_address=local, local_asn=asn,
                       hold_time=spec.hold_time if spec.hold_time is not None else config.hold_time,
                       port=spec.port, passive=spec.passive, description=f"peer AS{spec.asn}",
                       md5=md5, ttl=spec.multihop,
                       families=() if versions == (spec.address.version,) else versions,
                       other_family_next_hop=other_next_hop)
        out.append((peer, spec.import_options or config.import_options, spec.bfd or config.bfd))
    return out


def _families(me: NodeInfo, spec: PeerSpec, other_source: IPAddress | None, problems: list[str]
              ) -> tuple[tuple[int, ...], IPAddress | None]:
    """The IP versions a configured peer's session carries and the next hop for the family other than the
    session's: this node's address of that family on the interface towards the peer (`other_source`, from the
    kernel: a directly connected eBGP peer accepts only a next hop on the shared link), else its InternalIP of
    that family. A family this node has no address of cannot be announced with a valid next hop, so it is left
    out of the session and reported; with nothing left the peer is skipped."""
    own = spec.address.version
    if spec.families is None or spec.families == (own,):
        return (own,), None
    other = other_version(own)
    next_hop = other_source if other_source is not None and other_source.version == other else None
    next_hop = next_hop or me.internal_ip(other)
    if next_hop is None:
        problems.append(f"peer {spec.address}: this node has no IPv{other} address to announce as next hop; "
                        f"family ipv{other} not carried")
        return tuple(v for v in spec.families if v == own), None
    return spec.families, next_hop


def announcements(config: AgentConfig, me: NodeInfo, problems: list[str] | None = None
                  ) -> frozenset[Announcement]:
    """This node's pod CIDRs, tagged with the global communities plus the node's own."""
    standard, large = config.communities, config.large_communities
    for key, is_large in ((NODE_COMMUNITIES_KEY, False), (NODE_LARGE_COMMUNITIES_KEY, True)):
        text = node_value(me, key)
        if not text:
            continue
        try:
            extra = communities(key, text, large=is_large)
        except ConfigError as exc:
            if problems is not None:
                problems.append(f'node "{me.name}": {exc}; ignored')
            continue
        if is_large:
            large = tuple(dict.fromkeys(large + extra))
        else:
            standard = tuple(dict.fromkeys(standard + extra))
    return frozenset(Announcement(cidr, standard, large) for cidr in me.pod_cidrs)


def speaker_intent(config: AgentConfig, me: NodeInfo | None, nodes: Mapping[str, NodeInfo], *,
                   sources: Mapping[IPAddress, IPAddress] | None = None,
                   passwords: Mapping[PasswordRef, Md5Password] | None = None,
                   disabled: Collection[IPAddress] = (),
                   other_sources: Mapping[IPAddress, IPAddress] | None = None) -> SpeakerIntent:
    """Everything the speaker should do now. Without our own Node (not yet listed, or malformed) there is
    nothing to announce and no address to peer from, so the speaker idles rather than guesses. Peers in
    `disabled` (torn down for max-prefix, waiting to restart) are left out. `other_sources`: see
    `other_family_lookups`."""
    if me is None:
        return SpeakerIntent(frozenset(), frozenset())
    problems: list[str] = []
    configured = configured_peers(config, me, sources=sources or {}, passwords=passwords or {},
                                  problems=problems, other_sources=other_sources)
    own = node_asn(config, me)
    origins = origin_table(config, me, nodes)
    policies: dict[IPAddress, ImportPolicy] = {}
    peers: dict[IPAddress, BgpPeer] = {}
    # A configured peer wins over a mesh session to the same address (e.g. a node acting as a router).
    bfd: dict[IPAddress, BfdSettings] = {}
    for peer in mesh_peers(config, me, nodes):
        peers[peer.address] = peer
        policies[peer.address] = _policy(config, me, own, config.import_options, origins)
        bfd[peer.address] = config.bfd
    for peer, options, settings in configured:
        peers[peer.address] = peer
        policies[peer.address] = _policy(config, me, peer.local_asn, options, origins)
        bfd[peer.address] = settings
    sessions = bfd_sessions(peers.values(), bfd, problems)
    for address in disabled:
        peers.pop(address, None)
        policies.pop(address, None)
    return SpeakerIntent(frozenset(peers.values()), announcements(config, me, problems),
                         tuple(sorted(policies.items(), key=lambda kv: (kv[0].version, kv[0].packed))),
                         tuple(problems), sessions)


def bfd_sessions(peers: Iterable[BgpPeer], settings: Mapping[IPAddress, BfdSettings], problems: list[str]
                 ) -> frozenset[BfdPeer]:
    """A BFD session beside every BGP session whose BFD is enabled, from the same local address. Single-hop
    only (RFC 5881): a multihop peer's packets arrive with a TTL below 255 and a BFD speaker must drop them,
    so BFD is not run for it and the operator is told."""
    sessions = set()
    for peer in peers:
        wanted = settings.get(peer.address)
        if wanted is None or not wanted.enabled:
            continue
        if peer.ttl is not None:
            problems.append(f"peer {peer.address}: BFD is single-hop only (RFC 5881) and this peer is multihop; "
                            "BFD not run for it")
            continue
        sessions.add(BfdPeer(peer.address, peer.local_address, min_tx_ms=wanted.min_tx_ms,
                             min_rx_ms=wanted.min_rx_ms, multiplier=wanted.multiplier))
    return frozenset(sessions)


def origin_table(config: AgentConfig, me: NodeInfo, nodes: Mapping[str, NodeInfo]) -> OriginTable:
    """Every other Node's pod CIDRs with the ASN and addresses allowed to originate them (hijack check)."""
    return OriginTable(tuple(
        NodeOrigin(cidr, node_asn(config, node), frozenset(node.internal_ips))
        for node in nodes.values() if node.name != me.name for cidr in node.pod_cidrs))


def _policy(config: AgentConfig, me: NodeInfo, asn: int, options: ImportOptions,
            origins: OriginTable) -> ImportPolicy:
    return ImportPolicy(cluster_cidrs=config.cluster_cidrs, own_cidrs=me.pod_cidrs, own_asn=asn,
                        accept_default_route=options.accept_default_route, max_prefixes=options.max_prefixes,
                        max_prefix_action=options.max_prefix_action, restart_after=options.restart_after,
                        origins=origins)


def import_policy(config: AgentConfig, me: NodeInfo | None,
                  nodes: Mapping[str, NodeInfo] | None = None) -> ImportPolicy:
    """The default policy (mesh peers, and peers the intent does not know yet)."""
    own_asn = node_asn(config, me) if me else config.asn
    if me is None:
        return ImportPolicy(cluster_cidrs=config.cluster_cidrs, own_cidrs=(), own_asn=own_asn)
    return _policy(config, me, own_asn, config.import_options, origin_table(config, me, nodes or {}))


def router_id(me: NodeInfo) -> ipaddress.IPv4Address:
    """BGP identifier: the node's IPv4 InternalIP, or for an IPv6-only node a stable 32-bit value derived from
    its name (RFC 6286 only asks that it be unique within the AS)."""
    v4 = me.internal_ip(4)
    if isinstance(v4, ipaddress.IPv4Address):
        return v4
    digest = hashlib.sha256(me.name.encode()).digest()
    return ipaddress.IPv4Address(bytes([digest[0] | 1, *digest[1:4]]))
