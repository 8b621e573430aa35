"""Patch: ExaBGP 4.2.25's `Logger.debug` returns at once unless the configured level is DEBUG.

Replaces: `exabgp.logger.Logger.debug`.
Why: it is called per received prefix, and ExaBGP decides whether to log only inside `_report`, after
classifying the message's source by string prefix; during a full-table transfer that is pure overhead at the
INFO level bgpnet runs ExaBGP with. The replacement applies ExaBGP's own rule (a message is printed when its
level is <= the configured one) first, so what gets logged is unchanged.
Upstream: none found (ExaBGP 5 rewrote its logger; the cost may be gone there — measure before porting).
"""

from __future__ import annotations

import syslog


def apply() -> None:
    import exabgp.logger

    def debug(self: exabgp.logger.Logger, message: object, source: str = "", level: str = "DEBUG") -> None:
        if syslog.LOG_DEBUG <= self.level:
            self._report(message, source, level)

    exabgp.logger.Logger.debug = debug  # type: ignore[method-assign]
