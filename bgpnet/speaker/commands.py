"""Decide which process-API commands bring ExaBGP from what it holds to what is desired (pure).

Announcements are per neighbor (`neighbor <ip> announce route <prefix> next-hop self [community [..]]
[large-community [..]]`): ExaBGP resolves `self` to that neighbor's `local-address`, and each prefix only goes
to peers whose session carries its address family. A prefix of the family other than the session's (IPv6 over
an IPv4 session, or the reverse) gets the peer's explicit next hop of the prefix's own family instead of
`self`, which would be the session's address of the wrong family (RFC 2545, RFC 4760).

The caller hands over the whole desired set (MetalLB style); only the difference becomes commands, so an
unchanged set costs nothing and a change never resets a session. A prefix whose communities change is simply
announced again: the new UPDATE implicitly replaces the old path at the peer (RFC 4271 §3.1), so there is no
withdraw-then-announce flap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from bgpnet.model import Announcement, BgpPeer, IPAddress, IPNetwork

PerPeer = Mapping[IPAddress, frozenset[Announcement]]
# Per peer: the explicit next hop for each IP version that is not announced with `next-hop self`.
NextHops = Mapping[IPAddress, Mapping[int, IPAddress]]


def as_announcements(items: Iterable[Announcement | IPNetwork]) -> frozenset[Announcement]:
    """Plain prefixes are announcements without communities."""
    return frozenset(item if isinstance(item, Announcement) else Announcement(item) for item in items)


def desired_per_peer(peers: Iterable[BgpPeer], announcements: Collection[Announcement | IPNetwork]
                     ) -> dict[IPAddress, frozenset[Announcement]]:
    """Each peer gets the prefixes of every address family its session carries; a mesh peer only those meant
    for the mesh (`Announcement.to_mesh`)."""
    normalised = as_announcements(announcements)
    by_version = {v: frozenset(a for a in normalised if a.prefix.version == v) for v in (4, 6)}
    mesh_by_version = {v: frozenset(a for a in by_version[v] if a.to_mesh) for v in (4, 6)}
    out = {}
    for peer in peers:
        table = mesh_by_version if peer.mesh else by_version
        carried = peer.carried_versions()
        out[peer.address] = (table[carried[0]] if len(carried) == 1
                             else frozenset().union(*(table[v] for v in carried)))
    return out


def next_hops(peers: Iterable[BgpPeer]) -> dict[IPAddress, dict[int, IPAddress]]:
    """The explicit next hops of the peers that carry a family other than their session's."""
    out: dict[IPAddress, dict[int, IPAddress]] = {}
    for peer in peers:
        explicit = {v: hop for v in peer.carried_versions() if (hop := peer.next_hop_for(v)) is not None}
        if explicit:
            out[peer.address] = explicit
    return out


def announce(peer: IPAddress, item: Announcement | IPNetwork, next_hop: IPAddress | None = None) -> str:
    """`next_hop` None: `next-hop self`, the session's local address."""
    a = item if isinstance(item, Announcement) else Announcement(item)
    command = f"neighbor {peer} announce route {a.prefix} next-hop {'self' if next_hop is None else next_hop}"
    if a.communities:
        command += f" community [ {' '.join(a.communities)} ]"
    if a.large_communities:
        command += f" large-community [ {' '.join(a.large_communities)} ]"
    return command


def withdraw(peer: IPAddress, prefix: IPNetwork) -> str:
    return f"neighbor {peer} withdraw route {prefix}"


def _key(a: Announcement) -> tuple[int, bytes, int]:
    return a.prefix.version, a.prefix.network_address.packed, a.prefix.prefixlen


def diff_commands(held: PerPeer, desired: PerPeer, hops: NextHops | None = None) -> list[str]:
    """Commands for every peer in `desired`: withdraw prefixes held but no longer wanted, then announce what
    is wanted but not held as it is (new prefixes and changed communities). Peers only in `held` get nothing
    (their session is being removed). `hops` (see `next_hops`) gives explicit next hops; a changed next hop
    changes the peer itself, whose re-established session gets everything again."""
    commands: list[str] = []
    for peer in sorted(desired, key=lambda ip: (ip.version, ip.packed)):
        have = held.get(peer, frozenset())
        want = desired[peer]
        explicit = hops.get(peer, {}) if hops else {}
        wanted_prefixes = {a.prefix for a in want}
        commands.extend(withdraw(peer, a.prefix) for a in sorted(have, key=_key)
                        if a.prefix not in wanted_prefixes)
        commands.extend(announce(peer, a, explicit.get(a.prefix.version)) for a in sorted(want - have, key=_key))
    return commands


def validate_peers(peers: Collection[BgpPeer]) -> None:
    """One session per peer address: ExaBGP's API addresses neighbors by address."""
    seen: dict[IPAddress, BgpPeer] = {}
    for peer in peers:
        if peer.address in seen and seen[peer.address] != peer:
            raise ValueError(f"two BGP peers with address {peer.address}: {seen[peer.address]} and {peer}")
        if peer.address.version != peer.local_address.version:
            raise ValueError(f"BGP peer {peer.address} has local address {peer.local_address} of another "
                             "IP version")
        for version in peer.carried_versions():
            hop = peer.next_hop_for(version)
            if version != peer.address.version and (hop is None or hop.version != version):
                raise ValueError(f"BGP peer {peer.address} carries IPv{version} prefixes without an IPv{version} "
                                 f"next hop to announce them with (got {hop})")
        seen[peer.address] = peer
