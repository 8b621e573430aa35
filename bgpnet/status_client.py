"""Reads the running agent's `/status` document over HTTP (what `bgpnet status` shows).

HTTP on the metrics port rather than a Unix socket: the agent already serves it, it works the same in a
DaemonSet pod (`kubectl exec ... bgpnet status`, host network) and in a lab node (`ip netns exec <node>
bgpnet status`), and an operator can `curl` the very same document.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from bgpnet.http_server import DEFAULT_PORT, parse_address

DEFAULT_STATUS_ADDRESS = f"127.0.0.1:{DEFAULT_PORT}"


class AgentUnreachable(Exception):
    """No agent answered at the address (not running, other port, other network namespace)."""


def status_url(address: str) -> str:
    host, port = parse_address(address)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}/status" if ":" in host else f"http://{host}:{port}/status"


def fetch_status(address: str, timeout: float = 5.0) -> dict[str, Any]:
    url = status_url(address)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AgentUnreachable(f"no bgpnet agent answered at {url}: {reason}") from exc
