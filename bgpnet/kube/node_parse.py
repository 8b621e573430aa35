"""Turn one Kubernetes Node (plain JSON dict, as the API server sent it) into a validated `NodeInfo`.

Pure and dict-based on purpose: the node source feeds it `json.loads` output of list responses and watch
lines, skipping the client's model classes (deserialising 5,000 Nodes into pydantic models costs seconds).

What is an error and what is not:
- no InternalIP, an unparsable InternalIP, a malformed pod CIDR (including host bits set), `spec.podCIDR`
  disagreeing with `spec.podCIDRs[0]`, or two pod CIDRs of one IP family → `BadNode`, with an exact message;
  the API server never serves such a node from valid writes, so it means something is wrong and routing on it
  would be guessing.
- no podCIDRs yet is NOT an error: kubelet registers the Node before node-ipam-controller assigns a range; the
  node is known (others may peer with it) and announces nothing.
- `ready` follows the Ready condition; a node without one (just registered) is not ready, as kubectl shows it.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from bgpnet.model import IPAddress, IPNetwork, NodeInfo


class BadNode(ValueError):
    """A Node the API serves that bgpnet cannot route for; `str()` names the node and the reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f'node "{name}": {reason}')
        self.name = name
        self.reason = reason


def parse_node(obj: dict[str, Any]) -> NodeInfo:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return NodeInfo(
        name=name,
        internal_ips=_internal_ips(name, status.get("addresses") or []),
        pod_cidrs=_pod_cidrs(name, spec.get("podCIDR") or "", spec.get("podCIDRs") or []),
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        annotations=tuple(sorted((meta.get("annotations") or {}).items())),
        ready=_ready(status.get("conditions") or []),
    )


def _internal_ips(name: str, addresses: list[dict[str, Any]]) -> tuple[IPAddress, ...]:
    ips: list[IPAddress] = []
    for entry in addresses:
        if entry.get("type") != "InternalIP":
            continue
        text = entry.get("address", "")
        ip = _parse_ip(text)
        if ip is None:
            raise BadNode(name, f'invalid InternalIP "{text}"')
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise BadNode(name, "no InternalIP in status.addresses")
    return tuple(ips)


def _pod_cidrs(name: str, single: str, plural: list[str]) -> tuple[IPNetwork, ...]:
    if single and plural and single != plural[0]:
        raise BadNode(name, f'spec.podCIDR "{single}" does not match spec.podCIDRs[0] "{plural[0]}"')
    texts = plural or ([single] if single else [])
    cidrs: list[IPNetwork] = []
    for text in texts:
        parsed = _parse_cidr(text)
        if isinstance(parsed, str):
            raise BadNode(name, f'invalid pod CIDR "{text}": {parsed}')
        cidrs.append(parsed)
    versions = [c.version for c in cidrs]
    for version in (4, 6):
        if versions.count(version) > 1:
            # Dual-stack allows one range per family (the API server validates the same).
            raise BadNode(name, f"spec.podCIDRs has more than one IPv{version} range: {', '.join(texts)}")
    return tuple(cidrs)


# Text-level parsing is cached: a node's addresses and ranges rarely change, while its object is re-sent on
# every status update and re-listed on every resync (ipaddress parsing dominates the cost of a 5,000-node list).
@functools.lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _parse_cidr(text: str) -> IPNetwork | str:
    """The network, or why `text` is not a valid pod CIDR."""
    if "/" not in text:
        return "no prefix length" if _parse_ip(text) is not None else "not an IP network"
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return "not an IP network"
    return f"host bits set (network is {network})"


def _ready(conditions: list[dict[str, Any]]) -> bool:
    for condition in conditions:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False
