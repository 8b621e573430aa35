"""Every replacement of an ExaBGP internal bgpnet makes, in one place, behind one version gate.

bgpnet runs ExaBGP as a subprocess through `python -m bgpnet.speaker.exabgp` (exabgp_process.py): that entry
point calls `apply_all()` and then ExaBGP's own `run_exabgp()`. Nothing else in bgpnet imports `exabgp`'s
internals (the import-linter contract `exabgp-compat` checks it). Each patch module says what it replaces,
why, which upstream issue or fix it corresponds to, and what moving to ExaBGP 5 would take;
tests/unit/test_exabgp_compat.py pins the original behaviour each one replaces, so an ExaBGP that changes it
fails there first.

| module       | replaces                                   | kind        |
|--------------|--------------------------------------------|-------------|
| ipv4_nlri    | Update.unpack_message (incoming IPv4 NLRI) | performance |
| ipv6_nlri    | MPRNLRI/MPURNLRI.unpack (incoming IPv6)    | performance |
| debug_log    | Logger.debug                               | performance |
| hexstring    | the JSON encoder's hexstring               | performance |
| reconnect    | Delay.increase (ConnectRetry schedule)     | behaviour   |
| collision    | Peer.handle_connection (RFC 4271 §6.8)     | bug         |
| removal      | Reactor.active_peers (removed passive peer)| bug         |
| dns_names    | exabgp.util.dns's FQDN cache               | start-up    |
"""

from __future__ import annotations

from collections.abc import Callable

from bgpnet.speaker.exabgp import (
    collision,
    debug_log,
    dns_names,
    hexstring,
    ipv4_nlri,
    ipv6_nlri,
    reconnect,
    removal,
)

SUPPORTED_VERSION = "4.2.25"  # setup.cfg pins exabgp==4.2.25

PATCHES: dict[str, Callable[[], None]] = {
    "ipv4_nlri": ipv4_nlri.apply,
    "ipv6_nlri": ipv6_nlri.apply,
    "debug_log": debug_log.apply,
    "hexstring": hexstring.apply,
    "reconnect": reconnect.apply,
    "collision": collision.apply,
    "removal": removal.apply,
    "dns_names": dns_names.apply,
}
_applied: set[str] = set()


class UnsupportedExaBGP(RuntimeError):
    """The installed ExaBGP is not the version these patches were written and tested for."""


def installed_version() -> str:
    from exabgp.version import version

    return version


def apply_all() -> None:
    """Check the installed ExaBGP, then apply every patch that is not applied yet (idempotent)."""
    found = installed_version()
    if found != SUPPORTED_VERSION:
        raise UnsupportedExaBGP(f"bgpnet's ExaBGP patches are written for ExaBGP {SUPPORTED_VERSION}, found "
                                f"{found}: see bgpnet/speaker/exabgp/__init__.py")
    for name, apply in PATCHES.items():
        if name not in _applied:
            apply()
            _applied.add(name)


def forget_applied() -> None:
    """For tests that put ExaBGP's originals back: the next `apply_all` patches again."""
    _applied.clear()
