"""Start ExaBGP 4.2 with per-prefix work removed that does nothing for bgpnet and that its configuration
cannot turn off.

Run as `python -m bgpnet.speaker.exabgp_main --env FILE CONFIG` (what exabgp_process spawns); it then runs
ExaBGP's own entry point, unchanged in every other respect: sessions, the FSM, OPEN negotiation, keepalives,
path attribute parsing and validation, MP-BGP, End-of-RIB, announcing our routes. During a full-table
transfer ExaBGP spends its time per received prefix, on three things bgpnet has no use for:

- IPv4 NLRI objects. bgpnet reads every UPDATE raw (`receive { packets; }`, decoded by bgpnet.speaker.wire)
  and keeps no Adj-RIB-In in ExaBGP (`adj-rib-in false`), so the objects ExaBGP builds per prefix of the
  UPDATE's own NLRI fields (two per prefix, plus a debug string formatted eagerly for each) are thrown away:
  ~60 % of its CPU for a 50k-prefix table. Here those two fields are only checked for framing (prefix
  lengths ≤ 32 that fit the field, the check ExaBGP's decoder makes, with the same NOTIFICATION, UPDATE
  Message Error / Invalid Network Field, on failure) and removed before ExaBGP parses the rest of the message
  as usual. MP_REACH/MP_UNREACH (IPv6) are left to ExaBGP untouched.
- `Logger.debug`: called per prefix; ExaBGP decides whether to log only inside, after classifying the
  message's source by string prefix. Here a debug call returns at once unless the configured level is DEBUG,
  the same outcome as ExaBGP's own check.
- `hexstring`: the raw messages are written as hex built one `'%02X'` per octet in a generator;
  `bytes.hex().upper()` writes the same text in C.

It also gives ExaBGP's reconnect backoff a schedule that reaches a peer soon after it starts listening (see
bgpnet.speaker.reconnect: a mesh join waited ~2 s for ExaBGP's next attempt), and keeps a connection
collision from leaving a peer stuck in OpenConfirm (bgpnet.speaker.collision), and lets a removed passive
neighbor actually leave ExaBGP's table (bgpnet.speaker.removal).

Each replacement is checked against the original by tests/unit/test_speaker_exabgp_main.py (the backoff by
test_speaker_reconnect.py), and `patch()` refuses to run on another ExaBGP version than the one they were
written for.
"""

from __future__ import annotations

import sys
import syslog

from bgpnet.speaker import collision, reconnect, removal

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

    def debug(self: exabgp.logger.Logger, message: object, source: str = "", level: str = "DEBUG") -> None:
        # ExaBGP's own rule (Logger._report): a message is printed when its level is <= the configured one.
        if syslog.LOG_DEBUG <= self.level:
            self._report(message, source, level)

    exabgp.logger.Logger.debug = debug  # type: ignore[method-assign]
    json_response.hexstring = fast_hexstring  # the name the JSON encoder's `packets` and `_header` use
    _skip_ipv4_nlri_objects()
    reconnect.patch_delay()
    collision.patch_collision()
    removal.patch_removal()


def check_ipv4_prefixes(field: bytes) -> None:
    """Framing of an IPv4 NLRI field (RFC 4271 §4.3): each prefix's length octet (≤ 32) and its octets fit."""
    i, end = 0, len(field)
    while i < end:
        length = field[i]
        if length > 32:
            raise ValueError(f"IPv4 prefix length {length}")
        i += 1 + ((length + 7) >> 3)
    if i != end:
        raise ValueError("IPv4 prefix overruns its field")


def without_ipv4_nlri(data: bytes, split: object) -> bytes | None:
    """The UPDATE body with empty Withdrawn Routes and NLRI fields (path attributes kept), or None when there
    is nothing to remove. Raises ValueError on a malformed IPv4 prefix."""
    withdrawn, attributes, announced = split(data)  # type: ignore[operator]
    if not withdrawn and not announced:
        return None
    check_ipv4_prefixes(withdrawn)
    check_ipv4_prefixes(announced)
    return b"\0\0" + len(attributes).to_bytes(2, "big") + attributes


def _skip_ipv4_nlri_objects() -> None:
    from exabgp.bgp.message.direction import Direction
    from exabgp.bgp.message.notification import Notify
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.protocol.family import AFI, SAFI

    original = Update.unpack_message.__func__  # type: ignore[attr-defined]
    if getattr(original, "bgpnet_patched", False):
        return

    def unpack_message(cls: type, data: bytes, direction: int, negotiated: object) -> object:
        if direction != Direction.IN or negotiated.addpath.receive(AFI.ipv4, SAFI.unicast):  # type: ignore[attr-defined]
            return original(cls, data, direction, negotiated)
        try:
            stripped = without_ipv4_nlri(data, cls.split)
        except ValueError as exc:
            raise Notify(3, 10, str(exc)) from None  # UPDATE Message Error, Invalid Network Field
        if stripped is None:
            return original(cls, data, direction, negotiated)
        if len(stripped) == 4:
            # Only IPv4 withdrawals: without them the body would read as an End-of-RIB.
            return cls([], Attributes())
        return original(cls, stripped, direction, negotiated)

    unpack_message.bgpnet_patched = True  # type: ignore[attr-defined]
    Update.unpack_message = classmethod(unpack_message)  # type: ignore[method-assign, assignment]


def main() -> int:
    patch()
    from exabgp.application import run_exabgp

    sys.argv[0] = "exabgp"
    return run_exabgp()


if __name__ == "__main__":
    sys.exit(main())
