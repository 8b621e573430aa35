"""Service advertisement: how soon the ToR follows a Service's endpoints, how fast 500 LoadBalancer Services get
an address and a route, and what watching Services and EndpointSlices costs an agent in memory and CPU.

    sudo .venv/bin/python bench/service_advertisement.py            # 10 nodes, 20 reps, 500 LBs, 1,000 Services
    sudo .venv/bin/python bench/service_advertisement.py --quick    # 3 nodes, 3 reps, 50 LBs, 100 Services (CI)
    sudo .venv/bin/python bench/service_advertisement.py --parts endpoints --repetitions 50

Lab (fresh namespaces, prefix `bgpsv`; every address lives in one of them): bgpnet.lab's cluster in ToR mode
(bench/lablib.py's BenchLab): a Linux bridge 172.31.0.0/24 with the Kubernetes API stand-in (172.31.0.254),
a BIRD2 ToR (172.31.0.1, AS 65000, `neighbor range` for the segment, `merge paths on` so an ECMP route's next-hop
set is in its kernel, graceful restart off on the nodes' side), nodes i = 1..N (172.31.0.(10+i), AS 65000+i),
each running `bgpnet agent` with the in-cluster config at info level and the Service keys
(`serviceClusterIPs` 10.96.0.0/16, `serviceLoadBalancerIPs` 100.64.0.0/21, one pool `bench` of that /21), so
every node also runs the LoadBalancer allocator (one leads). Two BIRD2 "anchor" speakers stand in for nodes:
namespaces `ba` and `bb` on the same segment (172.31.0.201/.202, AS 65201/65202) peering with the same ToR,
each with a `protocol static svc` holding 198.51.100.200/32 (the same kind of /32; the ToR accepts /32s of
both ranges and nothing longer).

1. EndpointSlice change -> ToR kernel route. A LoadBalancer Service `web` (class bgpnet.io/bgp,
   externalTrafficPolicy Local, its address assigned by the allocator) has one endpoint. Three changes, each
   one write of its IPv4 EndpointSlice (replace): *move* (the endpoint goes to the next node), *withdraw*
   (scaled to zero), *announce* (back on that node). The clock starts when the write has returned and stops
   when the ToR's kernel route for the address has exactly the expected next-hop set (the new node, or no
   route): a netlink socket in the ToR namespace subscribed to IPv4 route notifications wakes the waiter, which
   then dumps BIRD's routes (RTM_GETROUTE, proto bird) in-process and compares the next hops; time.monotonic(),
   one process. The anchor makes the same three changes with its control socket (BirdControl, what birdc
   speaks): *move* = `enable svc` on the other anchor then `disable svc` on the current one (clock from the
   first command's return), *withdraw* = `disable svc`, *announce* = `enable svc`, clocked the same way.
   Changes alternate bgpnet, anchor, bgpnet, ... and each waits until the previous one is complete (plus
   100-200 ms for the rest of it: the ClusterIP /32, the other nodes' decisions); nothing else changes
   meanwhile. How long the write or command itself took (before the clock) is reported beside: the stand-in
   may already have sent the watch event before its response arrives.
   Comparable: both paths end in the same ToR BIRD, its BGP input, best-path/merge and kernel export, and both
   are timed to the same kernel state. Not comparable: bgpnet's path includes the API stand-in (the write is
   committed, then sent on every agent's EndpointSlice watch), the agents' reflector, the per-Service decision,
   the agent loop and ExaBGP's API pipe, on N nodes at once (the nodes that did not change also receive and
   decide); BIRD's path starts at its own control socket inside the speaker. The ratio says what the API watch
   and the agent add on top of "a router changed its mind", not that one BGP implementation is faster.
2. Allocate and announce S LoadBalancer Services (Cluster policy, so every node announces each): S creates one
   after the other (raw responses, no client-side model decoding); timed from just before the first create to
   all S having status.loadBalancer.ingress (seen on a raw Service watch opened before the creates, read in a
   thread) and to all S /32s in the ToR's kernel (its fib_triestat prefix count, polled every 2 ms). Median
   of R runs, the Services deleted (and their routes gone) between runs. Anchor for context, not a ratio: how
   long the stand-in took to accept the S creates (the floor: no allocator can finish before the last Service
   exists). It is measured in the same run, so under the same load: every agent's two Service watches and the
   allocator's status writes share the stand-in and the machine's cores with the creates.
3. Agent footprint with F Services / 10 F endpoints. Services like `web`, each with 10 endpoints spread over
   20 node names, so node1 has a local endpoint in half of them; addresses assigned by the allocator before
   the measurement. Then every agent is stopped, and node1 alone runs, alternately (R runs each), the agent
   with the Service keys (it watches Services and EndpointSlices and runs the allocator, which becomes leader
   and lists every Service) and the same agent with a config without any Service key (it watches neither).
   Per run: start, wait until the ToR holds node1's routes (pod CIDR; with Services also the Service CIDR and
   2 /32s per local Service) and the processes are idle (< 5 % of a core over 1 s); then VmRSS of the agent and
   of its children (ExaBGP, its API helper) from /proc/<pid>/status, CPU seconds (utime+stime, /proc/<pid>/stat)
   since start ("initial sync"); then a churn phase of C EndpointSlice updates at a fixed rate, each flipping
   node1's endpoint of one Service between ready and terminating (so node1 withdraws or re-announces that
   Service; every flipped slice is flipped back, the phase ends where it started), timed until node1's routes
   are back at the ToR and the processes idle again: CPU seconds over the phase, and per change. The
   no-Service agent sees the same writes (it does not watch them: its figure is the idle baseline). Goal from
   the issue: agent RSS with Services within 15 MB of the agent without.

Prints tables (p50/p90, ratios of p50s, medians) and one `JSON:` line. Figures, not verdicts: nothing is
asserted about time or memory.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    TICKS_PER_S,
    BirdControl,
    FibCounter,
    cpu_ticks,
    emit_json,
    format_table,
    loadavg,
    median,
    percentile,
    ratio,
    rss_kib,
    wait_idle,
    work_directory,
)
from lablib import BenchLab, BirdRouter, agent_pids, segment_router, start_agent, stop_agent, wait_agent_gone

from bgpnet.lab.cluster import ClusterNode, wait_for
from bgpnet.lab.netns import NetnsGroup, entered
from bgpnet.lab.processes import parent_pid
from bgpnet.lab.services import LabServices, service_body, slice_body
from bgpnet.lab.topology import LabPlan, node_ip

SERVICE_CIDR = "10.96.0.0/16"  # the API stand-in's Service CIDR
LB_CIDR = "100.64.0.0/21"
ANCHOR_CIDR = "198.51.100.0/24"
ANCHOR_PREFIX = "198.51.100.200/32"
SERVICE_CONFIG = {"serviceClusterIPs": [SERVICE_CIDR], "serviceLoadBalancerIPs": [LB_CIDR],
                  "loadBalancerPools": [{"name": "bench", "addresses": ["100.64.0.0-100.64.7.255"]}]}
SERVICE_KEYS = ("serviceClusterIPs", "serviceExternalIPs", "serviceLoadBalancerIPs", "serviceCommunities",
                "serviceLargeCommunities", "defaultLoadBalancer", "loadBalancerPools")
ANCHORS = (("ba", "172.31.0.201", 65201), ("bb", "172.31.0.202", 65202))
ENDPOINT_NODES = 20  # node names the footprint Services' endpoints are spread over
ENDPOINTS_PER_SERVICE = 10
NAMESPACE = "default"
RTPROT_BIRD = 12
CHANGES = ("move", "withdraw", "announce")
TIMEOUT_S = 60.0
RSS_GOAL_MB = 15


# --- configuration (pure) --------------------------------------------------------------------------------------
def tor_config(plan: LabPlan) -> str:
    """The lab's ToR (bgpnet.lab.bird) without BFD, with `merge paths on` (the kernel holds the whole next-hop
    set of an ECMP route) and accepting /32s of the bench's LoadBalancer range and of the anchors' range."""
    assert plan.tor is not None
    return f"""router id {plan.tor.ip};
protocol device {{ }}
protocol kernel {{
  ipv4 {{ export all; }};
  merge paths on;
}}
protocol bgp node {{
  local {plan.tor.ip} as {plan.tor.asn};
  neighbor range {plan.segment} external;
  dynamic name "node";
  hold time 9; keepalive time 3; connect retry time 2; error wait time 1, 10;
  ipv4 {{
    import filter {{
      if net ~ [ {plan.cluster_cidr}+, {SERVICE_CIDR}+, {LB_CIDR}{{32,32}}, {ANCHOR_CIDR}{{32,32}} ] then accept;
      reject;
    }};
    export where net ~ [ {plan.cluster_cidr}+ ];
  }};
}}
"""


def anchor_config(address: str, asn: int, tor_ip: str, tor_asn: int, *, enabled: bool) -> str:
    """A BIRD2 speaker standing in for a node: one /32 in `protocol static svc`, exported to the ToR only."""
    return f"""router id {address};
protocol device {{ }}
protocol static svc {{
  {'' if enabled else 'disabled; '}ipv4;
  route {ANCHOR_PREFIX} blackhole;
}}
protocol bgp tor {{
  local {address} as {asn};
  neighbor {tor_ip} as {tor_asn};
  hold time 9; keepalive time 3; connect retry time 2; error wait time 1, 10;
  ipv4 {{ import none; export where proto = "svc"; }};
}}
"""


def endpoint_nodes(index: int) -> list[str]:
    """The nodes of footprint Service `index`'s endpoints: 10 consecutive of 20 names, so node1 has one in half
    of the Services."""
    return [f"node{(index + j) % ENDPOINT_NODES + 1}" for j in range(ENDPOINTS_PER_SERVICE)]


def endpoint_map(index: int, terminating: bool = False) -> tuple[dict[str, list[str]], list[str]]:
    """({node: [pod address]}, nodes whose endpoint is terminating) of footprint Service `index`."""
    endpoints = {node: [f"10.{100 + index // 250}.{index % 250}.{int(node[4:])}"] for node in endpoint_nodes(index)}
    return endpoints, (["node1"] if terminating else [])


def churn_plan(local_services: list[int], changes: int) -> list[int]:
    """Which Service each churn change flips: the first changes//2 local Services flipped, then flipped back in
    the same order, so the phase ends where it started."""
    half = max(1, min(len(local_services), changes // 2))
    first = [local_services[i % half] for i in range(half)]
    return (first + first)[:changes] if changes >= 2 else first[:changes]


def without_services(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in SERVICE_KEYS}


# --- the ToR's kernel route of one prefix ----------------------------------------------------------------------
class TorRoutes:
    """Next hops of BIRD's kernel routes in the ToR namespace: woken by rtnetlink route notifications (and every
    50 ms), read by an in-process RTM_GETROUTE dump of proto bird, parsed by bgpnet.routes.messages."""

    RTMGRP_IPV4_ROUTE = 0x40

    def __init__(self, netns_path: str) -> None:
        with entered(netns_path):
            self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
            self._dump = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        self._events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self._events.bind((0, self.RTMGRP_IPV4_ROUTE))
        self._events.setblocking(False)
        self._dump.bind((0, 0))
        self._seq = 0
        self._buffer = bytearray(1 << 20)

    def _drain(self) -> None:
        while True:
            try:
                self._events.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:  # ENOBUFS: notifications dropped; the dump reads the state anyway
                continue

    def next_hops(self, prefix: str) -> frozenset[str]:
        """The gateways of the kernel route for `prefix` installed by BIRD (empty: no such route)."""
        from bgpnet.prefix import Prefix
        from bgpnet.routes.messages import DumpParser, dump_request

        self._seq += 1
        parser = DumpParser(RTPROT_BIRD, 254)
        parser.seq = self._seq
        self._dump.send(dump_request(self._seq, socket.AF_INET, RTPROT_BIRD, 254))
        while not parser.done:
            size = self._dump.recv_into(self._buffer)
            parser.feed(self._buffer, size)
        wanted = Prefix.parse(prefix)
        return frozenset(str(g) for r in parser.routes if r.route.prefix == wanted for g in r.route.gateways)

    def wait(self, prefix: str, want: frozenset[str], timeout: float = TIMEOUT_S) -> float:
        """time.monotonic() when the route for `prefix` was first seen with exactly the next hops `want`."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            seen = self.next_hops(prefix)
            now = time.monotonic()
            if seen == want:
                return now
            if now > deadline:
                raise TimeoutError(f"{prefix} at the ToR: next hops {sorted(seen)}, not {sorted(want)} "
                                   f"after {timeout:.0f} s")
            select.select([self._events], [], [], min(deadline - now, 0.05))

    def close(self) -> None:
        self._events.close()
        self._dump.close()


class IngressWatch:
    """A raw watch on the namespace's Services (started before the creates), in a thread: time.monotonic() when
    every one of `names` has shown status.loadBalancer.ingress."""

    def __init__(self, bench: Bench, names: set[str]) -> None:
        from bgpnet.kube.watch_stream import event_batches

        self._names, self._done = names, set()
        self.at: float | None = None
        listed = json.loads(bench.raw(bench.services.core.list_namespaced_service, NAMESPACE))
        self._response = bench.cluster.call(
            bench.services.core.list_namespaced_service, NAMESPACE, watch=True,
            resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=600, _preload_content=False)
        self._batches = event_batches(self._response)
        self._thread = threading.Thread(target=self._run, name="ingress-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self._batches:
                for event in batch:
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name")
                    if event.get("type") in ("ADDED", "MODIFIED") and name in self._names and \
                            ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
                        self._done.add(name)
                if len(self._done) == len(self._names):
                    self.at = time.monotonic()
                    return
        except Exception:  # shut down by close(): nothing more to record
            return

    def wait(self, timeout: float) -> float:
        self._thread.join(timeout)
        if self.at is None:
            raise TimeoutError(f"{len(self._done)} of {len(self._names)} Services got an address in {timeout:.0f} s")
        return self.at

    def close(self) -> None:
        self._response.shutdown()
        self._thread.join(10)
        self._response.release_conn()


def watch_fib(counter: FibCounter, target: int, timeout: float) -> float:
    """time.monotonic() when `counter` first reads `target` (polled every 2 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        value = counter.count()
        now = time.monotonic()
        if value == target:
            return now
        if now > deadline:
            raise TimeoutError(f"route count {value - target:+d} from its target after {timeout:.0f} s")
        time.sleep(0.002)


# --- the bench -------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, group: NetnsGroup, workdir: Path, nodes: int,
                 progress: Callable[[str], None]) -> None:
        self.group, self.progress = group, progress
        self.lab = BenchLab(group, workdir, mode="tor", nodes=nodes, graceful_restart=False,
                            tor_config=tor_config(plan_of(nodes)))
        self.lab.extra.update(SERVICE_CONFIG)
        self.cluster = self.lab.cluster
        assert self.cluster.tor is not None and self.lab.plan.tor is not None
        self.tor = self.cluster.tor
        self.tor_routes = TorRoutes(self.tor.ns.path)
        self.tor_fib = FibCounter(self.tor.ns.path)
        self.tor_base = self.tor_fib.count()
        self.nodes = [self.lab.add_node(i) for i in range(1, nodes + 1)]
        self.services = LabServices(self.cluster.api.api_client, self.cluster.call, NAMESPACE)
        self.anchors: list[tuple[BirdRouter, BirdControl | None, str]] = []
        for short, address, asn in ANCHORS:
            router = segment_router(self.cluster, short, [f"{address}/24"])
            router.start(anchor_config(address, asn, self.lab.plan.tor.ip, self.lab.plan.tor.asn,
                                       enabled=short == ANCHORS[0][0]))
            self.anchors.append((router, BirdControl(str(router.socket)), address))

    def close(self) -> None:
        for node in self.nodes:
            stop_agent(self.cluster, node)
        for router, control, _ in self.anchors:
            if control is not None:
                control.close()
            router.stop(self.group)
        self.tor_routes.close()
        self.tor_fib.close()
        self.lab.close()

    # API helpers: raw responses (no model decoding), from inside the segment namespace
    def raw(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bytes:
        response = self.cluster.call(fn, *args, _preload_content=False, **kwargs)
        try:
            return response.data
        finally:
            response.release_conn()

    def write_slice(self, name: str, endpoints: dict[str, list[str]], terminating: list[str] | None = None) -> None:
        body = slice_body(name, endpoints, family=4, terminating=terminating or ())
        self.raw(self.services.discovery.replace_namespaced_endpoint_slice, body["metadata"]["name"], NAMESPACE,
                 body)

    def create_service(self, name: str, endpoints: dict[str, list[str]] | None, *, local: bool,
                       terminating: list[str] | None = None) -> None:
        self.raw(self.services.core.create_namespaced_service, NAMESPACE, service_body(name, local=local))
        if endpoints is not None:
            body = slice_body(name, endpoints, family=4, terminating=terminating or ())
            self.raw(self.services.discovery.create_namespaced_endpoint_slice, NAMESPACE, body)

    def list_services(self) -> list[dict]:
        return json.loads(self.raw(self.services.core.list_namespaced_service, NAMESPACE))["items"]

    def delete_services(self, names: list[str]) -> None:
        for name in names:
            self.raw(self.services.core.delete_namespaced_service, name, NAMESPACE)
        self.raw(self.services.discovery.delete_collection_namespaced_endpoint_slice, NAMESPACE)

    def agents_idle(self, nodes: list[ClusterNode] | None = None) -> None:
        pids = [p for n in (nodes or self.nodes) for p in agent_pids(n)]
        wait_idle(pids, window=0.5, cpu_fraction=0.05 * max(1, len(nodes or self.nodes)) / 2, timeout=120)

    def wait_tor_count(self, target: int, timeout: float = TIMEOUT_S) -> None:
        wait_for(lambda: self.tor_fib.count() == target, timeout, 0.01,
                 f"{target - self.tor_base} routes at the ToR (has {self.tor_fib.count() - self.tor_base})")

    # setup
    def start_agents(self) -> None:
        for node in self.nodes:
            self.lab.start(node)
        # every node's pod CIDR, the Service CIDR (one ECMP route), and the first anchor's /32
        self.wait_tor_count(self.tor_base + len(self.nodes) + 2, 120)
        self.agents_idle()

    def node_hop(self, index: int) -> frozenset[str]:
        return frozenset({node_ip(index)})

    # part 1 -------------------------------------------------------------------------------------------------
    def endpoint_changes(self, repetitions: int) -> dict:
        self.progress("endpoint changes: creating Service web")
        self.services.create("web", {"node1": ["10.244.1.10"]}, local=True)
        wait_for(lambda: self.services.ingress("web"), TIMEOUT_S, 0.05, "web's LoadBalancer address")
        address = self.services.ingress("web")[0]
        prefix = f"{address}/32"
        self.tor_routes.wait(prefix, self.node_hop(1))
        self.tor_routes.wait(ANCHOR_PREFIX, frozenset({ANCHORS[0][1]}))
        self.agents_idle()
        n = len(self.nodes)
        where = 1  # the node holding web's endpoint
        anchor = 0  # the anchor announcing ANCHOR_PREFIX
        samples: dict[str, dict[str, list[float]]] = {who: {c: [] for c in CHANGES} for who in ("bgpnet", "bird")}
        writes: dict[str, list[float]] = {"bgpnet": [], "bird": []}  # how long the write / command itself took

        def bgpnet_change(endpoints: dict[str, list[str]], want: frozenset[str]) -> float:
            before = time.monotonic()
            self.write_slice("web", endpoints)
            started = time.monotonic()
            writes["bgpnet"].append(started - before)
            return self.tor_routes.wait(prefix, want) - started

        def bird_change(commands: list[tuple[int, str]], want: frozenset[str]) -> float:
            started = None
            for index, command in commands:
                control = self.anchors[index][1]
                assert control is not None
                before = time.monotonic()
                control.command(command)
                if started is None:
                    started = time.monotonic()
                    writes["bird"].append(started - before)
            assert started is not None
            return self.tor_routes.wait(ANCHOR_PREFIX, want) - started

        def pause() -> None:  # let the rest of the change (ClusterIP /32, other nodes' decisions) finish
            time.sleep(0.1 + random.uniform(0, 0.1))

        for rep in range(repetitions):
            for change in CHANGES:
                if change == "move":
                    where = where % n + 1
                    ours = bgpnet_change({f"node{where}": [f"10.244.{where}.10"]}, self.node_hop(where))
                elif change == "withdraw":
                    ours = bgpnet_change({}, frozenset())
                else:
                    ours = bgpnet_change({f"node{where}": [f"10.244.{where}.10"]}, self.node_hop(where))
                pause()
                if change == "move":
                    other = 1 - anchor
                    ref = bird_change([(other, "enable svc"), (anchor, "disable svc")],
                                      frozenset({self.anchors[other][2]}))
                    anchor = other
                elif change == "withdraw":
                    ref = bird_change([(anchor, "disable svc")], frozenset())
                else:
                    ref = bird_change([(anchor, "enable svc")], frozenset({self.anchors[anchor][2]}))
                pause()
                samples["bgpnet"][change].append(round(ours, 5))
                samples["bird"][change].append(round(ref, 5))
                self.progress(f"  #{rep + 1} {change}: bgpnet {ours * 1e3:.1f} ms, BIRD {ref * 1e3:.1f} ms")
        self.services.delete("web")
        self.wait_tor_count(self.tor_base + len(self.nodes) + 2)
        return summarize_changes(samples, writes, len(self.nodes), address)

    # part 2 -------------------------------------------------------------------------------------------------
    def allocation_run(self, count: int) -> dict:
        names = [f"lb{i:04d}" for i in range(count)]
        base = self.tor_fib.count()
        watch = IngressWatch(self, set(names))
        started = time.monotonic()
        for name in names:
            self.raw(self.services.core.create_namespaced_service, NAMESPACE, service_body(name, local=False))
        created = time.monotonic() - started
        try:
            announced = watch_fib(self.tor_fib, base + count, 300) - started
            allocated = watch.wait(300) - started
        finally:
            watch.close()
        self.delete_services(names)
        self.wait_tor_count(base, 120)
        self.agents_idle()
        return {"create_s": round(created, 3), "allocated_s": round(allocated, 3), "announced_s": round(announced, 3)}

    def allocation(self, count: int, runs: int) -> dict:
        results = []
        for run in range(runs):
            results.append(self.allocation_run(count))
            self.progress(f"  allocation run {run + 1}: {results[-1]}")
        return {"services": count, "runs": results, "nodes": len(self.nodes),
                **{key: round(median(r[key] for r in results), 3) for key in ("create_s", "allocated_s",
                                                                             "announced_s")}}

    # part 3 -------------------------------------------------------------------------------------------------
    def footprint(self, count: int, churn: int, rate: float, runs: int) -> dict:
        self.progress(f"footprint: creating {count} Services with {count * ENDPOINTS_PER_SERVICE} endpoints")
        names = [f"svc{i:04d}" for i in range(count)]
        setup_started = time.monotonic()
        for i, name in enumerate(names):
            endpoints, _ = endpoint_map(i)
            self.create_service(name, endpoints, local=True)
        wanted = set(names)
        wait_for(lambda: sum(1 for s in self.list_services() if s["metadata"]["name"] in wanted
                             and ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress")) == count,
                 300, 0.2, f"{count} LoadBalancer addresses")
        setup_s = time.monotonic() - setup_started
        for node in self.nodes:
            stop_agent(self.cluster, node)
        for node in self.nodes:
            wait_agent_gone(node)
        self.wait_tor_count(self.tor_base + 1)  # the anchor's /32 only
        local = [i for i in range(count) if "node1" in endpoint_nodes(i)]
        plan = churn_plan(local, churn)
        node = self.nodes[0]
        config_path = node.workdir / "config.yaml"
        with_config = json.loads(config_path.read_text())
        variants = {"with_services": (with_config, 2 + 2 * len(local)),
                    "without_services": (without_services(with_config), 1)}
        results: dict[str, list[dict]] = {k: [] for k in variants}
        for run in range(runs):
            for variant, (config, routes) in variants.items():
                config_path.write_text(json.dumps(config))
                sample = self.footprint_run(node, routes, plan, names, rate)
                results[variant].append(sample)
                self.progress(f"  footprint #{run + 1} {variant}: {sample}")
        config_path.write_text(json.dumps(with_config))
        self.delete_services(names)
        return summarize_footprint(results, count, len(plan), rate, len(local), round(setup_s, 1))

    def footprint_run(self, node: ClusterNode, routes: int, plan: list[int], names: list[str],
                      rate: float) -> dict:
        started = time.monotonic()
        start_agent(self.cluster, node)  # registered by start_agents
        self.wait_tor_count(self.tor_base + 1 + routes, 300)
        wait_for(lambda: len(agent_pids(node)) >= 3, 30, what="agent, ExaBGP and its API helper")
        pids = agent_pids(node)
        wait_idle(pids, window=1.0, cpu_fraction=0.05, timeout=120)
        settled = time.monotonic() - started
        agent = pids[0]
        names_of = {agent: "agent"}
        for pid in pids[1:]:
            names_of[pid] = "exabgp" if parent_pid(pid) == agent else "api-helper"
        rss = {names_of[p]: round(rss_kib(p) / 1024, 1) for p in pids}
        sync_cpu = {names_of[p]: cpu_ticks(p) / TICKS_PER_S for p in pids}
        before = {p: cpu_ticks(p) for p in pids}
        churn_started = time.monotonic()
        flipped: set[int] = set()
        for k, index in enumerate(plan):
            due = churn_started + k / rate
            time.sleep(max(0.0, due - time.monotonic()))
            flipped ^= {index}
            endpoints, terminating = endpoint_map(index, terminating=index in flipped)
            self.write_slice(names[index], endpoints, terminating)
        written = time.monotonic() - churn_started
        self.wait_tor_count(self.tor_base + 1 + routes, 120)
        wait_idle(pids, window=1.0, cpu_fraction=0.05, timeout=120)
        churn_s = time.monotonic() - churn_started
        churn_cpu = {names_of[p]: (cpu_ticks(p) - before[p]) / TICKS_PER_S for p in pids}
        rss_after = {names_of[p]: round(rss_kib(p) / 1024, 1) for p in pids}
        stop_agent(self.cluster, node)
        wait_agent_gone(node)
        self.wait_tor_count(self.tor_base + 1)
        return {"rss_mb": rss, "rss_mb_after_churn": rss_after, "settle_s": round(settled, 2),
                "sync_cpu_s": {k: round(v, 2) for k, v in sync_cpu.items()},
                "churn_cpu_s": {k: round(v, 2) for k, v in churn_cpu.items()},
                "churn_writes_s": round(written, 2), "churn_s": round(churn_s, 2)}


def plan_of(nodes: int) -> LabPlan:
    from bgpnet.lab.topology import plan_lab

    return plan_lab(nodes, 0, "tor")


# --- summaries (pure) ------------------------------------------------------------------------------------------
def stats(values: list[float]) -> dict:
    return {"p50": round(median(values), 5), "p90": round(percentile(values, 0.9), 5), "min": min(values),
            "max": max(values), "all": values}


def summarize_changes(samples: dict[str, dict[str, list[float]]], writes: dict[str, list[float]], nodes: int,
                      address: str) -> dict:
    """p50/p90 per change and side, the ratio of the p50s, and how long the timed write itself took (before the
    clock started: the API stand-in's commit and response, BIRD's control socket reply)."""
    out: dict = {"nodes": nodes, "address": address, "anchor_prefix": ANCHOR_PREFIX,
                 "repetitions": len(samples["bgpnet"]["move"]), "changes": {},
                 "write_s_p50": {who: round(median(v), 5) if v else None for who, v in writes.items()}}
    for change in CHANGES:
        ours, ref = stats(samples["bgpnet"][change]), stats(samples["bird"][change])
        out["changes"][change] = {"bgpnet": ours, "bird": ref, "ratio_p50": ratio(ours["p50"], ref["p50"])}
    return out


def summarize_footprint(results: dict[str, list[dict]], services: int, churn: int, rate: float, local: int,
                        setup_s: float) -> dict:
    def med(variant: str, key: str, process: str | None) -> float:
        values = [sum(r[key].values()) if process is None else r[key].get(process, 0.0) for r in results[variant]]
        return round(median(values), 3)

    out: dict = {"services": services, "endpoints": services * ENDPOINTS_PER_SERVICE, "local_services": local,
                 "churn_changes": churn, "churn_rate_per_s": rate, "runs": len(results["with_services"]),
                 "setup_s": setup_s, "samples": results, "rss_goal_mb": RSS_GOAL_MB}
    for variant in results:
        out[variant] = {
            "rss_mb": {p: med(variant, "rss_mb", p) for p in ("agent", "exabgp", "api-helper")},
            "rss_mb_total": med(variant, "rss_mb", None),
            "sync_cpu_s": {p: med(variant, "sync_cpu_s", p) for p in ("agent", "exabgp", "api-helper")},
            "churn_cpu_s": {p: med(variant, "churn_cpu_s", p) for p in ("agent", "exabgp", "api-helper")},
            "churn_cpu_s_total": med(variant, "churn_cpu_s", None)}
    ours, base = out["with_services"], out["without_services"]
    out["agent_rss_difference_mb"] = round(ours["rss_mb"]["agent"] - base["rss_mb"]["agent"], 1)
    out["total_rss_difference_mb"] = round(ours["rss_mb_total"] - base["rss_mb_total"], 1)
    out["meets_rss_goal"] = out["agent_rss_difference_mb"] <= RSS_GOAL_MB
    per = ours["churn_cpu_s"]["agent"] / churn if churn else 0.0
    net = (ours["churn_cpu_s"]["agent"] - base["churn_cpu_s"]["agent"]) / churn if churn else 0.0
    out["agent_cpu_ms_per_slice_change"] = round(per * 1e3, 2)
    out["agent_cpu_ms_per_slice_change_net"] = round(net * 1e3, 2)
    out["tree_cpu_ms_per_slice_change"] = round(ours["churn_cpu_s_total"] / churn * 1e3, 2) if churn else 0.0
    return out


def render_changes(result: dict) -> str:
    rows = []
    for change, row in result["changes"].items():
        ours, ref = row["bgpnet"], row["bird"]
        rows.append([change, ours["p50"] * 1e3, ours["p90"] * 1e3, ref["p50"] * 1e3, ref["p90"] * 1e3,
                     f"{row['ratio_p50']:.2f}x" if row["ratio_p50"] else "-"])
    table = format_table([f"EndpointSlice change -> ToR kernel ({result['nodes']} nodes, {result['repetitions']} "
                          "reps)", "bgpnet p50 ms", "p90", "BIRD anchor p50 ms", "p90", "bgpnet/BIRD p50"], rows)
    writes = result["write_s_p50"]
    return table + (f"before the clock: the EndpointSlice write took {writes['bgpnet'] * 1e3:.2f} ms (p50), the "
                    f"birdc command {writes['bird'] * 1e3:.2f} ms\n")


def render_allocation(result: dict) -> str:
    rows = [[f"run {i + 1}", r["create_s"], r["allocated_s"], r["announced_s"]] for i, r in enumerate(result["runs"])]
    rows.append(["median", result["create_s"], result["allocated_s"], result["announced_s"]])
    return format_table([f"{result['services']} LoadBalancer Services, {result['nodes']} nodes",
                         "creates accepted s (floor)", "all allocated s", "all /32s at ToR s"], rows)


def render_footprint(result: dict) -> str:
    rows = []
    for variant in ("with_services", "without_services"):
        r = result[variant]
        rows.append([variant.replace("_", " "), r["rss_mb"]["agent"], r["rss_mb"]["exabgp"], r["rss_mb"]["api-helper"],
                     r["rss_mb_total"], r["sync_cpu_s"]["agent"], r["sync_cpu_s"]["exabgp"],
                     r["churn_cpu_s"]["agent"], r["churn_cpu_s"]["exabgp"]])
    table = format_table([f"node1 alone, {result['services']} Services / {result['endpoints']} endpoints (median "
                          f"of {result['runs']})", "agent RSS MB", "ExaBGP", "helper", "total", "sync CPU s agent",
                          "ExaBGP", f"churn CPU s agent ({result['churn_changes']} changes)", "ExaBGP"], rows)
    return table + (f"agent RSS difference: {result['agent_rss_difference_mb']:+.1f} MB (goal <= {RSS_GOAL_MB} MB), "
                    f"whole tree {result['total_rss_difference_mb']:+.1f} MB; agent CPU per EndpointSlice change "
                    f"{result['agent_cpu_ms_per_slice_change']:.2f} ms "
                    f"({result['agent_cpu_ms_per_slice_change_net']:.2f} ms net of the no-Service agent's idle), "
                    f"agent+ExaBGP+helper {result['tree_cpu_ms_per_slice_change']:.2f} ms\n")


PARTS = ("endpoints", "allocation", "footprint")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 nodes, 3 reps, 50 LBs, 100 Services (CI smoke)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument("--nodes", type=int, help="lab nodes (default 10; quick 3)")
    parser.add_argument("--repetitions", type=int, help="endpoint-change repetitions (default 20; quick 3)")
    parser.add_argument("--lb-services", type=int, help="LoadBalancer Services to allocate (default 500; quick 50)")
    parser.add_argument("--lb-runs", type=int, help="allocation runs (default 3; quick 1)")
    parser.add_argument("--footprint-services", type=int, help="Services of the footprint (default 1000; quick 100)")
    parser.add_argument("--churn", type=int, help="EndpointSlice changes of the churn phase (default 200; quick 20)")
    parser.add_argument("--churn-rate", type=float, default=50.0, help="changes per second (default 50)")
    parser.add_argument("--footprint-runs", type=int, help="runs per agent variant (default 3; quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (agent and BIRD logs)")
    parser.add_argument("--output", type=Path, help="also write the JSON document here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    quick = args.quick
    nodes = args.nodes or (3 if quick else 10)
    repetitions = args.repetitions or (3 if quick else 20)
    lb_services = args.lb_services or (50 if quick else 500)
    lb_runs = args.lb_runs or (1 if quick else 3)
    fp_services = args.footprint_services or (100 if quick else 1000)
    churn = args.churn or (20 if quick else 200)
    fp_runs = args.footprint_runs or (1 if quick else 3)

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_start = loadavg()
    document: dict = {"quick": quick, "nodes": nodes, "endpoint_changes": None, "allocation": None,
                      "footprint": None}
    with work_directory("bench-service-adv-", args.keep) as workdir, NetnsGroup("bgpsv") as group:
        bench = Bench(group, workdir, nodes, progress)
        try:
            progress(f"starting {nodes} agents")
            bench.start_agents()
            if "endpoints" in parts:
                document["endpoint_changes"] = bench.endpoint_changes(repetitions)
            if "allocation" in parts:
                document["allocation"] = bench.allocation(lb_services, lb_runs)
            if "footprint" in parts:
                document["footprint"] = bench.footprint(fp_services, churn, args.churn_rate, fp_runs)
        finally:
            bench.close()
    document["loadavg"] = {"start": load_start, "end": loadavg()}
    if document["endpoint_changes"]:
        print(render_changes(document["endpoint_changes"]))
    if document["allocation"]:
        print(render_allocation(document["allocation"]))
    if document["footprint"]:
        print(render_footprint(document["footprint"]))
    print(f"load average (1, 5, 15 min): start {load_start}, end {document['loadavg']['end']}")
    print("clock: API write (or birdc command) returned -> the ToR's kernel route has the new next-hop set "
          "(rtnetlink-woken in-process dumps, time.monotonic); bgpnet and the BIRD anchor alternate, one at a time")
    emit_json("service_advertisement", document)
    if args.output:
        args.output.write_text(json.dumps({"benchmark": "service_advertisement", **document}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
