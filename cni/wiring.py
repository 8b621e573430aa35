"""The kernel side of an attachment: a veth with a /32 (/128) host route per pod address, no bridge, no NAT.

    pod netns                          node netns (where the plugin runs)
    eth0  10.244.1.5/32   <-- veth --> bgpXXXXXXXXXXX  (MAC ee:ee:ee:ee:ee:ee, fe80::1)
          default via 169.254.1.1        proxy_arp=1, neigh proxy_delay=0, forwarding=1
              dev eth0 onlink            10.244.1.5 dev bgpXXXXXXXXXXX scope link
          default via fe80::1 dev eth0   fd00::5 dev bgpXXXXXXXXXXX
          169.254.1.1 lladdr ee:ee:ee:ee:ee:ee PERMANENT
          fe80::1 lladdr ee:ee:ee:ee:ee:ee PERMANENT

Why it works (Calico's scheme): the pod's only route says "everything goes to 169.254.1.1 on eth0"; nobody
owns that address. The pod's neighbour table holds a permanent entry mapping it to the host veth's MAC, so
every packet is sent to the host end and lands in the node's routing table. The entry is what makes this
independent of the node's own routes: proxy ARP (also on, for pods wired before the entry existed and for
anything that flushes the pod's neighbour table) answers for 169.254.1.1 only when the node has a route
covering it through another interface, and a node that learns every route over BGP, or has no default route,
would leave the gateway unresolved. The default proxy_delay would hold a proxy answer back up to 0.8 s.
Back towards the pod, the /32 route through the veth is all the node needs, and it is exactly the prefix the
node's BGP speaker aggregates in its pod CIDR. IPv6 has no proxy NDP for a gateway that nobody owns, so the
host end carries the fixed link-local fe80::1 instead (the pod needs no address from the pod range to reach
it); its neighbour entry is made permanent too, so neither family waits for neighbour discovery.

The veth is created in one RTM_NEWLINK with its peer placed directly into the pod namespace. Every failure
after that point deletes the host end - which deletes the peer and every route through either end - so a
failed ADD leaves nothing behind.
"""


import posix

from . import errors, names, netns, sysctl
from .addresses import AF_INET, AF_INET6, format_ip, packed, parse_ip
from .errors import CniError
from .netlink import NUD_PERMANENT, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, Netlink, NetlinkError

_GW4 = packed(*parse_ip(names.GATEWAY_V4))
_GW6 = packed(*parse_ip(names.GATEWAY_V6))


class Attachment:
    """What one ADD wires: `addresses` are (family, integer address) pairs, one per family at most."""

    __slots__ = ("host_name", "ifname", "pod_mac", "mtu", "addresses")

    def __init__(self, host_name: str, ifname: str, pod_mac: str, mtu: int,
                 addresses: list[tuple[int, int]]) -> None:
        self.host_name = host_name
        self.ifname = ifname
        self.pod_mac = pod_mac
        self.mtu = mtu
        self.addresses = addresses


def random_mac() -> str:
    """A locally administered unicast MAC (bit 1 of the first octet set, bit 0 clear)."""
    raw = bytearray(posix.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def _kernel_error(exc: OSError) -> CniError:
    return CniError(errors.KERNEL_FAILURE, str(exc.strerror or exc))


def wire(att: Attachment, netns_fd: int) -> None:
    """Create and configure both ends. On return the calling thread is inside the pod's namespace."""
    host_ns = posix.open("/proc/thread-self/ns/net", posix.O_RDONLY | posix.O_CLOEXEC)
    entered = False
    nl = Netlink()
    try:
        try:
            nl.create_veth(att.host_name, names.HOST_MAC, att.mtu, att.ifname, att.pod_mac, netns_fd)
        except NetlinkError as exc:
            raise _kernel_error(exc) from None
        try:
            _configure_host(nl, att)
            netns.setns(netns_fd)
            entered = True
            with Netlink() as pod:
                _configure_pod(pod, att)
        except BaseException:
            if entered:
                netns.setns(host_ns)
            nl.delete_link(att.host_name)
            raise
    except OSError as exc:
        raise _kernel_error(exc) from None
    finally:
        nl.close()
        posix.close(host_ns)


def _configure_host(nl: Netlink, att: Attachment) -> None:
    link = nl.get_link(att.host_name)
    if link is None:
        raise CniError(errors.KERNEL_FAILURE, f"host veth {att.host_name} vanished after creation")
    name = att.host_name
    families = {family for family, _ in att.addresses}
    if AF_INET in families:
        sysctl.write(f"net/ipv4/conf/{name}/proxy_arp", "1")
        sysctl.write(f"net/ipv4/neigh/{name}/proxy_delay", "0")
        sysctl.write(f"net/ipv4/conf/{name}/forwarding", "1")
    if AF_INET6 in families:
        sysctl.write(f"net/ipv6/conf/{name}/forwarding", "1")
        nl.add_address(AF_INET6, link.index, _GW6, 64, f"add {names.GATEWAY_V6} to {name}")
    for family, value in att.addresses:
        text = format_ip(family, value)
        if family == AF_INET:
            nl.add_route(AF_INET, packed(family, value), 32, link.index, None, RT_SCOPE_LINK, False,
                         f"add host route {text}/32 dev {name}")
        else:
            nl.add_route(AF_INET6, packed(family, value), 128, link.index, None, RT_SCOPE_UNIVERSE, False,
                         f"add host route {text}/128 dev {name}")


def _configure_pod(nl: Netlink, att: Attachment) -> None:
    link = nl.get_link(att.ifname)
    if link is None:
        raise CniError(errors.KERNEL_FAILURE, f"pod interface {att.ifname} missing after creation")
    nl.set_up(link.index, f"set pod {att.ifname} up")
    for family, value in att.addresses:
        width = 32 if family == AF_INET else 128
        nl.add_address(family, link.index, packed(family, value), width,
                       f"add {format_ip(family, value)}/{width} to pod {att.ifname}")
    for family in sorted({family for family, _ in att.addresses}):
        gateway, gateway_text = (_GW4, names.GATEWAY_V4) if family == AF_INET else (_GW6, names.GATEWAY_V6)
        nl.add_permanent_neighbour(family, link.index, gateway, names.HOST_MAC,
                                   f"add pod neighbour {gateway_text} lladdr {names.HOST_MAC}")
        if family == AF_INET:
            nl.add_route(AF_INET, None, 0, link.index, _GW4, RT_SCOPE_UNIVERSE, True,
                         f"add pod default route via {names.GATEWAY_V4}")
        else:
            nl.add_route(AF_INET6, None, 0, link.index, _GW6, RT_SCOPE_UNIVERSE, False,
                         f"add pod default route via {names.GATEWAY_V6}")


def unwire(host_name: str) -> bool:
    """Delete the host veth (and with it the pod end and all routes); False when it was already gone.

    Returns as soon as the kernel has *unlisted* the device: its name is free, its routes are flushed and
    the RTM_DELLINK notification is out (~1 ms). Tearing a netdevice down ends with rcu_barrier() and a
    wait for the last references, 15-40 ms during which the deleting task sits in sendmsg() although the
    device is already gone from every table. A forked child performs the request and sits through that
    wait on its own; it keeps none of the runtime's pipes, so the runtime is not held up by it.
    """
    try:
        with Netlink() as nl:
            if nl.get_link(host_name) is None:
                return False
        return _delete_detached(host_name)
    except OSError as exc:
        raise _kernel_error(exc) from None


_RTMGRP_LINK = 0x1


def _delete_detached(host_name: str) -> bool:
    import _socket

    from .netlink import RTM_DELLINK, deleted_link_names

    monitor = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, 0)
    monitor.bind((0, _RTMGRP_LINK))  # subscribe before the request, so the notification cannot be missed
    try:
        pid = posix.fork()
        if pid == 0:  # child: never returns
            _child_delete(host_name)
        monitor.settimeout(0.05)
        while True:
            try:
                data = monitor.recv(1 << 16)
            except TimeoutError:
                done, status = posix.waitpid(pid, posix.WNOHANG)
                if done:
                    return _child_outcome(host_name, status)
                continue
            except OSError:  # ENOBUFS on a busy node: the notification may be lost, wait for the child
                return _child_outcome(host_name, posix.waitpid(pid, 0)[1])
            if host_name in deleted_link_names(data, RTM_DELLINK):
                return True
    finally:
        monitor.close()


def _child_delete(host_name: str) -> None:
    code = 1
    try:
        null = posix.open("/dev/null", posix.O_RDWR)
        for fd in (0, 1, 2):
            posix.dup2(null, fd)
        with Netlink() as nl:
            code = 0 if nl.delete_link(host_name) else 2
    except BaseException:  # the exit status is the only channel back
        code = 1
    finally:
        posix._exit(code)


def _child_outcome(host_name: str, status: int) -> bool:
    code = posix.waitstatus_to_exitcode(status)
    if code == 0:
        return True
    if code == 2:
        return False
    raise CniError(errors.KERNEL_FAILURE, f"delete link {host_name} failed (helper exit {code})")


def check(att: Attachment, netns_fd: int) -> list[str]:
    """Every way the kernel differs from `att` (empty when it matches). Host side first, then the pod's."""
    problems: list[str] = []
    with Netlink() as nl:
        host = nl.get_link(att.host_name)
        if host is None:
            return [f"host veth {att.host_name} does not exist"]
        if not host.flags & 1:
            problems.append(f"host veth {att.host_name} is down")
        if host.mac != names.HOST_MAC:  # the pod's permanent gateway entry points at this MAC
            problems.append(f"host veth {att.host_name} has MAC {host.mac}, expected {names.HOST_MAC}")
        for family, value in att.addresses:
            width = 32 if family == AF_INET else 128
            if not any(r.dst == packed(family, value) and r.dst_len == width and r.oif == host.index
                       for r in nl.routes(family)):
                problems.append(f"host route {format_ip(family, value)}/{width} dev {att.host_name} is missing")
    netns.setns(netns_fd)
    with Netlink() as nl:
        pod = nl.get_link(att.ifname)
        if pod is None:
            return [*problems, f"pod interface {att.ifname} does not exist"]
        if att.pod_mac and pod.mac != att.pod_mac.lower():
            problems.append(f"pod interface {att.ifname} has MAC {pod.mac}, expected {att.pod_mac}")
        if pod.mtu != att.mtu:
            problems.append(f"pod interface {att.ifname} has MTU {pod.mtu}, expected {att.mtu}")
        for family, value in att.addresses:
            width = 32 if family == AF_INET else 128
            if (pod.index, packed(family, value), width) not in nl.addresses(family):
                problems.append(f"pod address {format_ip(family, value)}/{width} is missing")
            gateway, gateway_text = (_GW4, names.GATEWAY_V4) if family == AF_INET else (_GW6, names.GATEWAY_V6)
            if not any(r.dst_len == 0 and r.oif == pod.index and r.gateway == gateway
                       for r in nl.routes(family)):
                problems.append(f"pod default route via {gateway_text} is missing")
            if (pod.index, gateway, names.HOST_MAC, NUD_PERMANENT) not in nl.neighbours(family):
                problems.append(f"pod neighbour {gateway_text} lladdr {names.HOST_MAC} PERMANENT is missing")
    return problems
