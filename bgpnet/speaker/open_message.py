"""Decode the OPEN a peer sent, as ExaBGP hands it over raw (pure, no I/O).

Only what the agent needs: the graceful restart capability (RFC 4724 §3), with RFC 9072 extended optional
parameters.
"""

from __future__ import annotations

_GRACEFUL_RESTART = 64
_CAPABILITIES = 2


def decode_open_restart_time(body: bytes) -> int | None:
    """The Restart Time of the graceful restart capability (RFC 4724 §3) in an OPEN body, None without one."""
    if len(body) < 10:
        raise ValueError(f"OPEN body of {len(body)} octets")
    i, end = 10, 10 + body[9]
    extended = body[9] == 255 and len(body) > 10 and body[10] == 255  # RFC 9072: 2-octet parameter lengths
    if extended:
        if len(body) < 13:
            raise ValueError("truncated extended optional parameters")
        i, end = 13, 13 + int.from_bytes(body[11:13], "big")
    if end > len(body):
        raise ValueError("optional parameters overrun the OPEN")
    restart_time = None
    while i < end:
        kind = body[i]
        if extended:
            length, i = int.from_bytes(body[i + 1:i + 3], "big"), i + 3
        else:
            length, i = body[i + 1], i + 2
        stop = i + length
        if stop > end:
            raise ValueError("optional parameter overruns the OPEN")
        if kind == _CAPABILITIES:
            j = i
            while j < stop:
                if j + 2 > stop or j + 2 + body[j + 1] > stop:
                    raise ValueError("capability overruns its parameter")
                code, size = body[j], body[j + 1]
                if code == _GRACEFUL_RESTART:
                    if size < 2:
                        raise ValueError(f"graceful restart capability of {size} octets")
                    restart_time = int.from_bytes(body[j + 2:j + 4], "big") & 0x0FFF
                j += 2 + size
        i = stop
    return restart_time
