"""Built-in IPAM: round-robin allocation of one address per family from the node's pod CIDRs.

The search starts after the address last handed out (so a just-released address is not reused at once,
which keeps stale conntrack and ARP entries of a dead pod away from a new one), walks every host address of
every CIDR of the family's range set, and takes the first one whose reservation file it can create. The
caller holds the store lock, so the cursor and the reservation move together.

Addresses the node itself holds (`node_held`: every address on any interface of the node's namespace when
the caller looked) are skipped without touching the store: a pod given one would answer ARP for the node's
address and its /32 host route would shadow the node's own.
"""


from . import errors
from .addresses import Cidr, format_ip, parse_ip
from .errors import CniError
from .store import Store

# Upper bound on candidates tried per ADD; reached only in a practically full huge (IPv6) range.
MAX_TRIES = 1 << 16


def _candidates(ranges: list[Cidr], after: tuple[int, int] | None) -> list[tuple[Cidr, int, int]]:
    """(cidr, start, stop) segments in search order: the rest of the cursor's CIDR, the following CIDRs,
    then wrap around to the beginning."""
    segments = [(cidr, cidr.first_host(), cidr.last_host() + 1) for cidr in ranges]
    if after is not None:
        for index, (cidr, start, stop) in enumerate(segments):
            if cidr.contains(*after) and start <= after[1] < stop:
                rotated = [(cidr, after[1] + 1, stop), *segments[index + 1:], *segments[:index],
                           (cidr, start, after[1] + 1)]
                return [s for s in rotated if s[1] < s[2]]
    return segments


def allocate_one(store: Store, range_set: int, ranges: list[Cidr], container_id: str, ifname: str,
                 node_held: frozenset[tuple[int, int]] = frozenset()) -> tuple[int, int]:
    """Reserve one address from `ranges` for the attachment; returns (family, address)."""
    last = store.last_reserved(range_set)
    cursor = None
    if last:
        try:
            cursor = parse_ip(last)
        except ValueError:
            cursor = None  # a torn cursor file only costs the round-robin position
    tries = 0
    for cidr, start, stop in _candidates(ranges, cursor):
        for value in range(start, stop):
            text = format_ip(cidr.family, value)
            if (cidr.family, value) not in node_held and store.reserve(text, container_id, ifname):
                store.set_last_reserved(range_set, text)
                return cidr.family, value
            tries += 1
            if tries >= MAX_TRIES:
                break
        if tries >= MAX_TRIES:
            break
    skipped = held_in(node_held, ranges)
    raise CniError(errors.POOL_EXHAUSTED, "no IP addresses available in " + ", ".join(str(c) for c in ranges),
                   f"skipped addresses the node holds: {', '.join(format_ip(*a) for a in skipped)}" if skipped
                   else "")


def held_in(node_held: frozenset[tuple[int, int]], ranges: list[Cidr]) -> list[tuple[int, int]]:
    """The node's addresses that are host addresses of `ranges`, sorted."""
    return sorted(a for a in node_held if any(c.contains(*a) and c.first_host() <= a[1] <= c.last_host()
                                              for c in ranges))


def allocate(store: Store, range_sets: list[list[Cidr]], container_id: str, ifname: str,
             node_held: frozenset[tuple[int, int]] = frozenset()) -> list[tuple[int, int]]:
    """One address from each range set; all or nothing (a later exhausted family releases the earlier)."""
    got: list[tuple[int, int]] = []
    try:
        for index, ranges in enumerate(range_sets):
            got.append(allocate_one(store, index, ranges, container_id, ifname, node_held))
    except BaseException:
        for family, value in got:
            store.release(format_ip(family, value))
        raise
    return got


def exhausted_sets(store: Store, range_sets: list[list[Cidr]],
                   node_held: frozenset[tuple[int, int]] = frozenset()) -> list[list[Cidr]]:
    """The range sets in which every host address is reserved or held by the node (STATUS reports them)."""
    held = list(node_held)
    for res in store.reservations():
        try:
            address = parse_ip(res.ip)
        except ValueError:
            continue
        if address not in node_held:  # a reservation of a node address is not counted twice
            held.append(address)
    full = []
    for ranges in range_sets:
        capacity = sum(c.last_host() - c.first_host() + 1 for c in ranges)
        used = sum(1 for family, value in held if any(c.contains(family, value) and
                                                      c.first_host() <= value <= c.last_host() for c in ranges))
        if used >= capacity:
            full.append(ranges)
    return full
