"""Start ExaBGP 4.2 with two per-message costs removed that its configuration cannot turn off.

Run as `python -m bgpnet.speaker.exabgp_main --env FILE CONFIG` (what exabgp_process spawns); it then runs
ExaBGP's own entry point, unchanged in every other respect. During a full-table transfer ExaBGP spends its time
per received prefix, and two of those costs do nothing for bgpnet:

- `Logger.debug`: the receive loop calls it once per prefix ("UPDATE #n nlri ..."); ExaBGP decides whether
  to log only inside, after classifying the message's source by string prefix, on every call (~7 % of its
  CPU for a 50k-prefix table). Here a debug call returns at once unless the configured level is DEBUG, the
  same outcome as ExaBGP's own check.
- `hexstring`: the raw messages bgpnet asks for (`receive { packets; }`) are written as hex built one
  `'%02X'` per octet in a generator (~7 % of its CPU). `bytes.hex().upper()` writes the same text in C.

Both replacements are checked against the originals by tests/unit/test_speaker_exabgp_main.py, and
`patch()` refuses to run on another ExaBGP version than the one they were written for.
"""

from __future__ import annotations

import sys
import syslog

EXPECTED_VERSION = "4.2.25"


def fast_hexstring(value: bytes) -> str:
    """ExaBGP's `exabgp.util.hexstring` output ("0x" + upper-case hex), in C."""
    return "0x" + bytes(value).hex().upper()


def patch() -> None:
    import exabgp.logger
    import exabgp.reactor.api.response.json as json_response
    from exabgp.version import version

    if version != EXPECTED_VERSION:
        raise RuntimeError(f"bgpnet's ExaBGP launcher is written for ExaBGP {EXPECTED_VERSION}, found {version}")

    report = exabgp.logger.Logger._report

    def debug(self: exabgp.logger.Logger, message: object, source: str = "", level: str = "DEBUG") -> None:
        # ExaBGP's own rule (Logger._report): a message is printed when its level is <= the configured one.
        if syslog.LOG_DEBUG <= self.level:
            report(self, message, source, level)

    exabgp.logger.Logger.debug = debug  # type: ignore[method-assign]
    json_response.hexstring = fast_hexstring  # the name the JSON encoder's `packets` and `_header` use


def main() -> int:
    patch()
    from exabgp.application import run_exabgp

    sys.argv[0] = "exabgp"
    return run_exabgp()


if __name__ == "__main__":
    sys.exit(main())
