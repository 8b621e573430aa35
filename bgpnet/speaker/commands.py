"""Decide which process-API commands bring ExaBGP from what it holds to what is desired (pure).

Announcements are per neighbor (`neighbor <ip> announce route <prefix> next-hop self`): ExaBGP resolves
`self` to that neighbor's `local-address`, and each prefix only goes to peers of its own address family.
The caller hands over the whole desired set (MetalLB style); only the difference becomes commands, so an
unchanged set costs nothing and a change never resets a session.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from bgpnet.model import BgpPeer, IPAddress, IPNetwork

PerPeer = Mapping[IPAddress, frozenset[IPNetwork]]


def desired_per_peer(peers: Iterable[BgpPeer], announcements: Collection[IPNetwork]) -> dict[IPAddress,
                                                                                            frozenset[IPNetwork]]:
    """IPv4 prefixes go to IPv4 peers, IPv6 prefixes to IPv6 peers."""
    by_version = {v: frozenset(p for p in announcements if p.version == v) for v in (4, 6)}
    return {peer.address: by_version[peer.address.version] for peer in peers}


def announce(peer: IPAddress, prefix: IPNetwork) -> str:
    return f"neighbor {peer} announce route {prefix} next-hop self"


def withdraw(peer: IPAddress, prefix: IPNetwork) -> str:
    return f"neighbor {peer} withdraw route {prefix}"


def _order(prefixes: Iterable[IPNetwork]) -> list[IPNetwork]:
    return sorted(prefixes, key=lambda p: (p.version, p.network_address.packed, p.prefixlen))


def diff_commands(held: PerPeer, desired: PerPeer) -> list[str]:
    """Commands for every peer in `desired`: withdraw what is held but no longer wanted, then announce
    what is wanted but not held. Peers only in `held` get nothing (their session is being removed)."""
    commands: list[str] = []
    for peer in sorted(desired, key=lambda ip: (ip.version, ip.packed)):
        have = held.get(peer, frozenset())
        want = desired[peer]
        commands.extend(withdraw(peer, p) for p in _order(have - want))
        commands.extend(announce(peer, p) for p in _order(want - have))
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
        seen[peer.address] = peer
