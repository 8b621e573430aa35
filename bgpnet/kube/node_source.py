"""The agent's view of all Nodes: a reflector (bgpnet.kube.reflector) over Nodes, handing the agent whole
snapshots.

Design decisions:
- Raw JSON, not client models: list bodies and watch lines are `json.loads`-ed and parsed by the pure
  `parse_node`, which is what makes a 5,000-node sync take a fraction of a second instead of seconds.
- Resume, don't re-list: a watch that ends (timeoutSeconds, connection cut, API outage) resumes from the last
  resourceVersion seen, bookmarks included; the API server replays what happened meanwhile. Only a 410 (the
  server's event window no longer covers that resourceVersion) or another watch ERROR event forces a re-list,
  plus the periodic resync, which re-lists every `resync_period` as a safety net for anything missed.
- Outages: every failed request backs off exponentially (`backoff_initial` doubling up to `backoff_max`) and
  the last known state stays in place: routes are not withdrawn because the control plane is unreachable.
- Bad Nodes keep their last good state. A Node's podCIDRs are immutable once set, so a Node turning bad
  in practice means its InternalIP vanished for a moment (kubelet or cloud-provider hiccup); withdrawing its
  routes would cut its running pods off for a transient glitch, while its last address and ranges are still
  where those pods live. A bad Node never seen good is absent from the snapshot. Either way it is logged
  (once per distinct reason), counted and listed in `stats.bad_nodes`; deletion removes it as usual.
- `on_change` receives the whole snapshot, only when it differs from the previous one (so status heartbeats
  that change nothing bgpnet reads cost nothing downstream), once per re-list and once per batch of watch
  events that arrived together; and always once after the first successful list, so the agent knows the
  initial state even for an empty cluster.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubernetes import client

from bgpnet.kube.node_parse import parse_node
from bgpnet.kube.reflector import Reflector
from bgpnet.model import NodeInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeSourceStats:
    """A consistent copy of the node source's counters, for metrics and status output."""

    events: Mapping[str, int] = field(default_factory=dict)  # watch events by type (ADDED, BOOKMARK, ...)
    relists: int = 0
    watches: int = 0  # watch requests started
    api_errors: int = 0
    bad_node_updates: int = 0  # ADDED/MODIFIED/listed objects that failed to parse
    bad_nodes: Mapping[str, str] = field(default_factory=dict)  # currently bad: name -> reason
    api_reachable: bool = False
    last_sync_time: float | None = None  # wall clock of the last successful list or watch event
    resource_version: str | None = None
    nodes: int = 0


class NodeSource:
    def __init__(
        self,
        api: client.ApiClient,
        on_change: Callable[[Mapping[str, NodeInfo]], None],
        *,
        resync_period: float = 300,
        watch_timeout: int = 300,
        backoff_max: float = 30.0,
        backoff_initial: float = 0.5,
        request_timeout: float = 60.0,
    ) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeInfo] = {}
        self._reflector = Reflector(
            "nodes", client.CoreV1Api(api).list_node, parse_node, self._changed, resync_period=resync_period,
            watch_timeout=watch_timeout, backoff_initial=backoff_initial, backoff_max=backoff_max,
            request_timeout=request_timeout)

    def snapshot(self) -> Mapping[str, NodeInfo]:
        with self._lock:
            return types.MappingProxyType(dict(self._nodes))

    @property
    def stats(self) -> NodeSourceStats:
        stats = self._reflector.stats
        return NodeSourceStats(
            events=stats.events, relists=stats.relists, watches=stats.watches, api_errors=stats.api_errors,
            bad_node_updates=stats.bad_updates, bad_nodes=stats.bad_objects, api_reachable=stats.api_reachable,
            last_sync_time=stats.last_sync_time, resource_version=stats.resource_version, nodes=stats.objects)

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set; returns within a moment of it even mid-watch."""
        self._reflector.run(stop)

    def _changed(self, changes: Mapping[str, NodeInfo | None]) -> None:
        """The reflector's changed Nodes (None: deleted) -> the whole snapshot to the agent. A failing agent
        callback makes the reflector re-list and hand every Node over again."""
        with self._lock:
            for name, node in changes.items():
                if node is None:
                    self._nodes.pop(name, None)
                else:
                    self._nodes[name] = node
            snapshot = types.MappingProxyType(dict(self._nodes))
        self._on_change(snapshot)
