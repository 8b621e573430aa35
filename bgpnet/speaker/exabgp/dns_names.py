"""Patch: ExaBGP 4.2.25 asks DNS for the machine's FQDN at start (`exabgp.util.dns.domain`), which can stall.

Replaces: the module-level cache `__domain_name` of `exabgp.util.dns`, filled before ExaBGP reads its config.
Why: the neighbor parser evaluates `local.get('domain-name', domain())` for every neighbor, and `domain()`
calls `socket.getfqdn()`, a reverse DNS lookup of the host name. On a node whose resolver does not answer
(no DNS before the pod network is up, which is exactly when the agent starts) that waits for the resolver's
timeouts (seconds, ExaBGP even prints a warning for it) before any session can start. Rendering
`domain-name` in the config does not help: the default is evaluated anyway. The value ExaBGP would compute
is the first label of the FQDN; the first label of the host name, which needs no DNS, is used instead. It is
sent only in the FQDN capability, which bgpnet does not enable.
Upstream: none found. ExaBGP 5: check whether `exabgp.util.dns` still resolves eagerly.
"""

from __future__ import annotations

import socket


def apply() -> None:
    import exabgp.util.dns as dns

    name = socket.gethostname().split(".")[0] or "localhost"
    setattr(dns, "__domain_name", name)  # the module's own cache: `domain()` returns it without a lookup
