"""Keeps the kernel's `inet bgpnet` NAT table equal to what `natOutgoing` asks for on this node.

Called on every reconcile: it applies a batch only when the wanted rules changed (or on the periodic re-apply,
like the routes), so a steady node costs nothing. A failed apply is reported and retried on the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from bgpnet.model import IPNetwork
from bgpnet.nat import nft, ruleset

log = logging.getLogger("bgpnet.nat")


class OutgoingNat:
    def __init__(self, apply: Callable[[dict[str, Any]], None] = nft.apply) -> None:
        self._apply = apply
        self._applied: dict[str, Any] | None = None  # the last batch the kernel took; None: unknown
        self.errors = 0
        self.last_error = ""

    def sync(self, enabled: bool, pod_cidrs: Iterable[IPNetwork], cluster_cidrs: Iterable[IPNetwork], *,
             force: bool = False) -> bool:
        """Make the table match; True when the kernel holds the wanted rules afterwards."""
        wanted = ruleset.ruleset(pod_cidrs, cluster_cidrs) if enabled else ruleset.removal()
        if wanted == self._applied and not force:
            return True
        try:
            self._apply(wanted)
        except nft.NftError as exc:
            self.errors += 1
            self.last_error = str(exc)
            self._applied = None
            log.error("natOutgoing: nft refused the rules error=%s", exc)
            return False
        if wanted != self._applied:
            log.info("natOutgoing %s", "on: pod traffic leaving the cluster CIDRs is masqueraded" if enabled
                     else "off")
        self._applied = wanted
        return True
