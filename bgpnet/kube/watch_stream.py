"""Pieces every list/watch loop of bgpnet.kube shares: reading a raw watch stream, and the retry backoff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import urllib3


class Backoff:
    """Exponential: `initial`, doubling up to `cap`; `reset` after a success."""

    def __init__(self, initial: float, cap: float) -> None:
        self._initial, self._cap, self._next = initial, cap, initial

    def reset(self) -> None:
        self._next = self._initial

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self._cap)
        return delay


def event_batches(response: urllib3.BaseHTTPResponse) -> Iterator[list[dict[str, Any]]]:
    """Watch events as they arrive, grouped by network read (a burst is applied and published once)."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        batch = [json.loads(line) for line in lines if line.strip()]
        if batch:
            yield batch
    if pending.strip():
        yield [json.loads(pending)]
