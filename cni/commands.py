"""ADD, DEL, CHECK, STATUS and GC: each a short orchestration of IPAM, wiring and result shaping.

Order matters for what a failure leaves behind. ADD validates the netns before reserving anything, reserves
before wiring, and releases the reservation when wiring fails (wiring undoes itself). DEL and GC remove the
veth before releasing its addresses, so an address is never handed out while a stale route still points at
the old pod. DEL treats everything already gone as success. ADD, DEL and CHECK of one container ID hold its
attachment lock (cni/attachment_lock.py) from after input validation to the end, so they never interleave.
"""


import posix

from . import errors, names, result
from .addresses import AF_INET, AF_INET6, format_ip
from .errors import CniError
from .request import SUPPORTED_VERSIONS, Invocation, NetConf


class Context:
    """The raw inputs some commands forward unchanged to a delegated IPAM plugin."""

    __slots__ = ("environ", "stdin")

    def __init__(self, environ: dict[str, str], stdin: bytes) -> None:
        self.environ = environ
        self.stdin = stdin


def _store(conf: NetConf) -> object:
    from .store import Store

    return Store(conf.data_dir, conf.name)


def _store_dir(conf: NetConf) -> str:
    return f"{conf.data_dir.rstrip('/')}/{conf.name}"


def _attachment_lock(inv: Invocation, conf: NetConf) -> object:
    from .attachment_lock import AttachmentLock

    return AttachmentLock(_store_dir(conf), inv.container_id)


def add(inv: Invocation, conf: NetConf, ctx: Context) -> dict:
    from . import netns, wiring

    netns_fd = netns.open_netns(inv.netns)
    host_name = names.host_veth_name(inv.container_id, inv.ifname)
    pod_mac = str(conf.runtime_config.get("mac") or wiring.random_mac()).lower()
    with _attachment_lock(inv, conf):
        addresses = _reserve(inv, conf, ctx)
        try:
            wiring.wire(wiring.Attachment(host_name, inv.ifname, pod_mac, conf.mtu, addresses), netns_fd)
        except BaseException:
            _release(inv, conf, ctx, addresses)
            raise
    return result.build(conf.cni_version, host_name, inv.ifname, pod_mac, inv.netns, conf.mtu, addresses,
                        conf.prev_result)


def _reserve(inv: Invocation, conf: NetConf, ctx: Context) -> list[tuple[int, int]]:
    if conf.ipam is not None:
        from . import delegate

        ipam_result = delegate.run(conf.ipam["type"], inv.path, "ADD", ctx.environ, ctx.stdin) or {}
        try:
            addresses = result.ipam_addresses(ipam_result)
        except ValueError as exc:
            delegate.run(conf.ipam["type"], inv.path, "DEL", ctx.environ, ctx.stdin)
            raise CniError(errors.DELEGATE_FAILED, f"IPAM plugin {conf.ipam['type']} returned {exc}") from None
        if not addresses:
            delegate.run(conf.ipam["type"], inv.path, "DEL", ctx.environ, ctx.stdin)
            raise CniError(errors.DELEGATE_FAILED, f"IPAM plugin {conf.ipam['type']} returned no address")
        return addresses
    from .allocator import allocate

    with _store(conf) as store:
        return allocate(store, conf.ranges, inv.container_id, inv.ifname, node_addresses(conf))


def node_addresses(conf: NetConf) -> frozenset[tuple[int, int]]:
    """Every address on any interface of the node's namespace (the one the plugin runs in), now, in the
    families the pod CIDRs use."""
    from .netlink import Netlink

    families = sorted({ranges[0].family for ranges in conf.ranges})
    with Netlink() as nl:
        return frozenset((family, int.from_bytes(raw, "big")) for family in families
                         for raw in nl.held_addresses(family) if len(raw) == (4 if family == AF_INET else 16))


def _release(inv: Invocation, conf: NetConf, ctx: Context, addresses: list[tuple[int, int]]) -> None:
    if conf.ipam is not None:
        from . import delegate

        delegate.run(conf.ipam["type"], inv.path, "DEL", ctx.environ, ctx.stdin)
        return
    with _store(conf) as store:
        for family, value in addresses:
            store.release(format_ip(family, value))


def delete(inv: Invocation, conf: NetConf, ctx: Context) -> None:
    from . import wiring

    # No netns needed: the host end's name is derived from the attachment, and deleting it takes the pod
    # end (if the namespace still exists) and all routes with it.
    with _attachment_lock(inv, conf):
        wiring.unwire(names.host_veth_name(inv.container_id, inv.ifname))
        if conf.ipam is not None:
            from . import delegate

            delegate.run(conf.ipam["type"], inv.path, "DEL", ctx.environ, ctx.stdin)
            return
        with _store(conf) as store:
            store.release_owner(inv.container_id, inv.ifname)


def check(inv: Invocation, conf: NetConf, ctx: Context) -> None:
    from . import netns, wiring

    if conf.prev_result is None:
        raise CniError(errors.INVALID_CONFIG, 'invalid network config: "prevResult" is required for CHECK')
    try:
        addresses, mac = result.addresses_of(conf.prev_result, inv.ifname, inv.netns)
    except ValueError as exc:
        raise CniError(errors.CHECK_FAILED, "check failed", str(exc)) from None
    netns_fd = netns.open_netns(inv.netns)
    problems = []
    with _attachment_lock(inv, conf):
        if conf.ipam is not None:
            from . import delegate

            delegate.run(conf.ipam["type"], inv.path, "CHECK", ctx.environ, ctx.stdin)
        else:
            with _store(conf) as store:
                held = {r.ip for r in store.reservations()
                        if r.container_id == inv.container_id and r.ifname == inv.ifname}
            problems += [f"address {format_ip(f, v)} is not reserved for this attachment"
                         for f, v in addresses if format_ip(f, v) not in held]
        host_name = names.host_veth_name(inv.container_id, inv.ifname)
        problems += wiring.check(wiring.Attachment(host_name, inv.ifname, mac, conf.mtu, addresses), netns_fd)
    if problems:
        raise CniError(errors.CHECK_FAILED, "check failed", "; ".join(problems))


def status(inv: Invocation, conf: NetConf, ctx: Context) -> None:
    from . import sysctl

    families = {ranges[0].family for ranges in conf.ranges} if conf.ipam is None else {AF_INET}
    for family, key in ((AF_INET, "net/ipv4/ip_forward"), (AF_INET6, "net/ipv6/conf/all/forwarding")):
        if family in families:
            try:
                on = sysctl.read(key) == "1"
            except OSError:
                on = family == AF_INET6  # IPv6 compiled out or disabled: nothing to forward
            if not on:
                raise CniError(errors.NOT_AVAILABLE_LIMITED, f"node does not forward: {key.replace('/', '.')} "
                               "is 0, so existing pods are cut off too")
    if conf.ipam is not None:
        from . import delegate

        if _delegate_speaks_1_1(conf, inv):
            delegate.run(conf.ipam["type"], inv.path, "STATUS", ctx.environ, ctx.stdin)
        return
    from .allocator import exhausted_sets

    try:
        with _store(conf) as store:
            probe = f"{store.dir}/.status-probe-{posix.getpid()}"
            fd = posix.open(probe, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o600)
            posix.close(fd)
            posix.unlink(probe)
            full = exhausted_sets(store, conf.ranges, node_addresses(conf))
    except CniError as exc:
        raise CniError(errors.NOT_AVAILABLE, f"IPAM store unusable: {exc.msg}", exc.details) from None
    except OSError as exc:
        raise CniError(errors.NOT_AVAILABLE, f"IPAM store unusable: {exc}") from None
    if full:
        raise CniError(errors.NOT_AVAILABLE, "no IP addresses available in "
                       + ", ".join(str(c) for ranges in full for c in ranges))


def gc(inv: Invocation, conf: NetConf, ctx: Context) -> None:
    """Release every reservation whose (container ID, ifname) is not a valid attachment, and remove the host
    veth such an attachment left behind."""
    from . import wiring
    from .log import log

    valid = conf.valid_attachments or set()
    if conf.ipam is not None:
        from . import delegate

        if _delegate_speaks_1_1(conf, inv):
            delegate.run(conf.ipam["type"], inv.path, "GC", ctx.environ, ctx.stdin)
        return
    from . import validate
    from .attachment_lock import AttachmentLock, sweep_leftovers

    with _store(conf) as store:
        for res in store.reservations():
            if (res.container_id, res.ifname) in valid:
                continue
            owner_ok = not validate.identifier_problem(res.container_id, validate.MAX_CONTAINER_ID) and \
                not validate.ifname_problem(res.ifname)
            if owner_ok:
                # An ADD, DEL or CHECK of this container is running (it holds the lock and may be waiting
                # for the store lock GC holds): leave the attachment to it; a later GC sees the outcome.
                lock = AttachmentLock(store.dir, res.container_id)
                if not lock.try_acquire():
                    continue
                try:
                    wiring.unwire(names.host_veth_name(res.container_id, res.ifname))
                    store.release(res.ip)
                finally:
                    lock.release()
            else:
                store.release(res.ip)
            log(f"GC released {res.ip} of {res.container_id or '?'}/{res.ifname or '?'}")
        sweep_leftovers(store.dir)


def _delegate_speaks_1_1(conf: NetConf, inv: Invocation) -> bool:
    """STATUS and GC exist since CNI 1.1.0: forward them only to an IPAM plugin that says it supports it."""
    from . import delegate, jsonio

    env = {"CNI_COMMAND": "VERSION", "CNI_PATH": ":".join(inv.path)}
    try:
        info = delegate.run(conf.ipam["type"], inv.path, "VERSION", env,
                            jsonio.dumps({"cniVersion": conf.cni_version}).encode()) or {}
    except CniError:
        return False
    return "1.1.0" in (info.get("supportedVersions") or [])


def version() -> dict:
    return {"cniVersion": SUPPORTED_VERSIONS[-1], "supportedVersions": list(SUPPORTED_VERSIONS)}
