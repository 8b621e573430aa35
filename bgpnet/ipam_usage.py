"""How many pod addresses bgpnet-cni has handed out per pod CIDR, read from its IPAM store on disk.

The store (cni/store.py) is one file per reserved address, named by the address itself, under
`<dataDir>/<network>/`; other names there (`lock`, `last_reserved_ip.N`) are not addresses. Counting the
file names that parse as an address inside a pod CIDR is all it takes, without taking the plugin's lock: a
reservation is a single atomic file creation, so a listing never sees half of one.

Capacity follows the plugin's allocator (cni/addresses.py `Cidr.first_host/last_host`): the network address
and the last address of the range are never handed out, except in /31, /32 (/127, /128) where every address
is a host. A unit test compares both, so they cannot drift apart silently.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from bgpnet.model import IPNetwork
from bgpnet.snapshot import IpamPool


def capacity(cidr: IPNetwork) -> int:
    size = cidr.num_addresses
    return size if size <= 2 else size - 2


def count_in_use(names: Iterable[str], cidrs: Iterable[IPNetwork]) -> dict[IPNetwork, int]:
    """Reservation file names per pod CIDR (pure)."""
    cidrs = list(cidrs)
    counts = {cidr: 0 for cidr in cidrs}
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            continue  # lock, last_reserved_ip.N, temporary files
        for cidr in cidrs:
            if address.version == cidr.version and address in cidr:
                counts[cidr] += 1
                break
    return counts


def read_pools(store_dir: Path, cidrs: Iterable[IPNetwork]) -> tuple[IpamPool, ...]:
    """The usage of each pod CIDR; a store that does not exist yet (no pod started) means zero in use."""
    cidrs = list(cidrs)
    try:
        names = os.listdir(store_dir)
    except (FileNotFoundError, NotADirectoryError):
        names = []
    used = count_in_use(names, cidrs)
    return tuple(IpamPool(str(cidr), used[cidr], capacity(cidr)) for cidr in cidrs)
