"""Pieces every list/watch loop of bgpnet.kube shares: reading a raw watch stream, interrupting it on stop, the
retry backoff and how an API error is logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

# Errors that mean "the API is unreachable or misbehaving right now: back off and retry".
TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)


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


def shut_on_stop(stop: threading.Event, finished: threading.Event,
                 current: Callable[[], urllib3.BaseHTTPResponse | None]) -> None:
    """Run in a thread beside a list/watch loop until `finished`: when `stop` is set, shut down the socket of
    the watch in progress (`current()`). A blocked read on a watch socket only returns when data or EOF arrives;
    shutting the socket down is the one way to interrupt it promptly (what kubernetes.watch.Watch.stop does)."""
    while not finished.is_set():
        if stop.wait(0.1):
            response = current()
            if response is not None:
                response.shutdown()
            return


def describe(exc: BaseException) -> str:
    """An API error in one short phrase for the log."""
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
