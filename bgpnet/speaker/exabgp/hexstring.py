"""Patch: the hex text of raw messages written in C (`exabgp.reactor.api.response.json.hexstring`).

Replaces: the name `hexstring` in ExaBGP's JSON encoder module (`packets` and `_header` use it).
Why: bgpnet asks for every UPDATE raw, and ExaBGP builds its hex one `'%02X'` per octet in a generator;
`bytes.hex().upper()` writes the same text in C. Tests check the output is identical for any bytes.
Upstream: none found. ExaBGP 5: same function in `exabgp.util`; re-check the encoder's import.
"""

from __future__ import annotations


def fast_hexstring(value: bytes) -> str:
    """ExaBGP's `exabgp.util.hexstring` output ("0x" + upper-case hex), in C."""
    return "0x" + bytes(value).hex().upper()


def apply() -> None:
    import exabgp.reactor.api.response.json as json_response

    json_response.hexstring = fast_hexstring
