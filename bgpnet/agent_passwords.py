"""MD5 passwords for configured peers, read from Secrets or files and cached (the agent's password seam).

A read may take seconds (an API call), so the agent calls this outside its lock. Passwords are re-read every
route sync period, which picks up a rotated Secret; a failed read keeps the last good value, so an API outage
never tears down a session, and each distinct error is logged once. Messages name the reference, never the
value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

from bgpnet.config import PasswordRef
from bgpnet.model import Md5Password

log = logging.getLogger("bgpnet.agent")


class PasswordCache:
    def __init__(self, read: Callable[[PasswordRef], Md5Password] | None, period: float) -> None:
        self._read = read
        self._period = period
        self._values: dict[PasswordRef, Md5Password] = {}
        self._errors: dict[PasswordRef, str] = {}
        self._read_at: float | None = None

    def get(self, refs: Collection[PasswordRef], now: float) -> Mapping[PasswordRef, Md5Password]:
        """The passwords for `refs` that are known (re-read when due or when one is still missing)."""
        due = (self._read_at is None or now - self._read_at >= self._period
               or not set(refs) <= self._values.keys())
        if refs and due and self._read is not None:
            self._read_at = now
            for ref in refs:
                try:
                    self._values[ref] = self._read(ref)
                    self._errors.pop(ref, None)
                except Exception as exc:  # the message names the reference, never the value
                    if self._errors.get(ref) != str(exc):
                        self._errors[ref] = str(exc)
                        log.warning("cannot read MD5 password error=%s", exc)
        return {ref: self._values[ref] for ref in refs if ref in self._values}
