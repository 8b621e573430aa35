"""Route installation, BGP to kernel: bgpnet's agent against BIRD2 as the receiving node, one receiver at a time.

    sudo .venv/bin/python bench/route_install.py            # IPv4 and IPv6, 10k and 50k, 5 repetitions, churn (~4 min)
    sudo .venv/bin/python bench/route_install.py --quick    # 200 prefixes, 1 repetition, no churn (CI smoke)
    sudo .venv/bin/python bench/route_install.py --pin      # receiver on CPU 1, injector on CPU 0
    sudo .venv/bin/python bench/route_install.py --profile /tmp/prof   # + py-spy of agent and ExaBGP

Topology (one L2 segment: the lab's bridge, which also hosts the Kubernetes API stand-in):
  injector   172.31.0.2  fd00:31::2   AS 65000  BIRD2: disabled static protocols feed4_<N> (N /26s from
                                                10.128.0.0) and feed6_<N> (N /64s from fd20::), one eBGP session
                                                per receiver (IPv4 transport, IPv4 and IPv6 unicast), disabled
                                                until that receiver's turn;
  node1      172.31.0.11 fd00:31::11  AS 64512  `bgpnet agent --kubeconfig ...` (ExaBGP + helper + agent), the
                                                injector as a global peer with `families: [ipv4, ipv6]`;
  birdnode   172.31.0.3  fd00:31::3   AS 64513  BIRD2 importing both families into its kernel (protocol kernel).

Fairness: the receivers run one at a time, alternating (bgpnet, BIRD, bgpnet, ...) on the same injector feed;
only the receiver whose turn it is has a session (the other one idles, its session disabled at the injector).
Both receivers are started fresh per address family, so their memory at each size is not a previous family's
high-water mark. One repetition for one receiver:
  install   the feed is enabled at the injector, then the receiver's session; the clock starts when the
            injector's session reaches Established (BIRD's own timestamp, µs, `show protocols`) and stops when
            the receiver's kernel holds all N routes. Also reported: first route (Established -> first route in
            the kernel), the same install clocked from the `enable` of the session (session set-up included),
            the receiver's CPU seconds (its whole process tree: agent + ExaBGP + helper, or BIRD) from the
            `enable` until it is idle again, and its RSS (process tree sum) with the N routes;
  withdraw  the injector's feed is disabled (it withdraws all N): clock from that command until the kernel is
            back to its count before the feed;
  feed      the previous benchmark's start event, side by side: on the established session the feed is enabled
            again, clock from that command until all N are installed (then withdrawn, not timed).
Kernel routes are counted from kernel counters, never from dumps: /proc/net/fib_triestat for IPv4 (the poller
sleeps 8x its read time, ~1 % resolution at 50k) and /proc/net/rt6_stats for IPv6 (O(1); /proc/net/ipv6_route
takes seconds to read at 50k routes). The injector is poked with `show status` every 5 ms while routes flow:
BIRD 2.0.12 occasionally idles ~3 s before its last UPDATE (a missed wakeup) otherwise. Host routes with
`quickack 1` between injector and receivers keep delayed ACKs (~40 ms stalls) out of the measurement.

Then, on the bgpnet receiver only:
  churn     (full form, IPv4, after the 50k repetitions, same agent) 500k prefix updates over 100k prefixes:
            announce (MED 10), replace (MED 20 + community), replace back, withdraw, re-announce (MED 20 +
            community), then the full withdrawal; RSS afterwards and its ratio to the RSS with 50k routes.
  resync    the agent is restarted with `routeSyncPeriod` = --resync-period (the agent resyncs when that long
            has passed since the start of its previous resync round) and the largest IPv4 feed plus one extra
            prefix. The end of each resync and its duration come from the agent's /metrics
            (bgpnet_route_sync_last_timestamp_seconds, bgpnet_route_sync_duration_seconds{kind="resync"}), so
            the next one is due at end + period; the extra prefix is withdrawn halfway to the next resync (and
            re-announced), then again at the moment the next resync's kernel phase begins (end + period -
            duration): withdrawal latency without and during a resync.

Prints tables (medians with min-max over the repetitions, ratios bgpnet/BIRD of the medians with the range of
the per-repetition ratios, load averages) and one `JSON:` line. Figures, not verdicts: no goal is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    BirdControl,
    FibCounter,
    bird_since,
    block_prefixes,
    cpu_ns,
    emit_json,
    format_table,
    loadavg,
    median,
    pin,
    ratio,
    spread,
    tree_rss_kib,
    wait_idle,
    watch_count,
    work_directory,
)
from lablib import (
    BirdRouter,
    agent_metrics,
    agent_pids,
    metric_total,
    segment_router,
    stop_agent,
    update_agent_config,
)

from bgpnet.lab.cluster import Cluster, ClusterNode, wait_for
from bgpnet.lab.netns import NetnsGroup

INJECTOR_IP, INJECTOR_IP6, INJECTOR_ASN = "172.31.0.2", "fd00:31::2", 65000
BIRDNODE_IP, BIRDNODE_IP6, BIRDNODE_ASN = "172.31.0.3", "fd00:31::3", 64513
NODE_IP6 = "fd00:31::11"
NODE_ASN = 64512
# Inside the bench's cluster CIDRs, clear of the node's pod CIDR 10.244.1.0/24 and of each other.
FEEDS = {4: ("10.128.0.0", 26), 6: ("fd20::", 64)}
CHURN = ("10.16.0.0", 26)  # 100k /26s: 10.16.0.0 - 10.113.168.0
SINGLE = "10.200.0.0/26"
CLUSTER_CIDRS = ["10.0.0.0/8", "fd20::/16"]
TIMERS = "hold time 90; keepalive time 30; connect delay time 1; connect retry time 1; error wait time 1, 5;"
TIMEOUT_S = 180.0
CHURN_PREFIXES = 100_000
# Issue 14's goals, reported beside the figures (never asserted): install and CPU as ratios to BIRD2 at >= 10k
# prefixes, first route in seconds after Established, RSS in MB at 50k, churn as a ratio to the 50k RSS, and the
# delay a resync adds to a withdrawal in seconds.
GOALS = {"install_ratio": {"ipv4": 1.2, "ipv6": 1.4}, "cpu_ratio": 1.3, "first_route_s": 0.005,
         "rss_mb_at_50k": {"ipv4": 100, "ipv6": 110}, "churn_ratio": 1.2, "resync_delay_s": 0.05}


def feed_prefixes(n: int, version: int = 4) -> list[str]:
    return block_prefixes(n, *FEEDS[version])


def feed_name(version: int, n: int) -> str:
    return f"feed{version}_{n}"


def static_protocol(name: str, version: int, prefixes: list[str], options: str = "") -> str:
    routes = "".join(f"  route {p} blackhole;\n" for p in prefixes)
    return f"protocol static {name} {{\n  disabled;\n  ipv{version} {{ {options} }};\n{routes}}}"


def injector_config(feeds: dict[int, list[int]], churn: int, receivers: list[tuple[str, str, int]]) -> str:
    """BIRD2 injector: one disabled static protocol per feed (enabled to start it), `churn` prefixes twice
    (churna, and churnb with a higher preference: enabling it replaces every churn route), the single prefix of
    the resync test, and one disabled session per receiver (IPv4 transport, both families). The export filter
    gives churnb's routes other attributes, so switching between the two sends real replacements."""
    parts = [f"router id {INJECTOR_IP};", "timeformat protocol iso long us;", "protocol device { }"]
    for version, sizes in feeds.items():
        parts += [static_protocol(feed_name(version, n), version, feed_prefixes(n, version)) for n in sizes]
    if churn:
        churn_prefixes = block_prefixes(churn, *CHURN)
        parts.append(static_protocol("churna", 4, churn_prefixes))
        parts.append(static_protocol("churnb", 4, churn_prefixes, "preference 250;"))
    parts.append(static_protocol("single", 4, [SINGLE]))
    parts.append("""filter out4 {
  if proto = "churnb" then { bgp_med = 20; bgp_community.add((65000, 2)); } else { bgp_med = 10; }
  accept;
}""")
    for name, address, asn in receivers:
        parts.append(f"""protocol bgp {name} {{
  disabled;
  local {INJECTOR_IP} as {INJECTOR_ASN};
  neighbor {address} as {asn};
  {TIMERS}
  ipv4 {{ import none; export filter out4; }};
  ipv6 {{ import none; export all; }};
}}""")
    return "\n".join(parts) + "\n"


def birdnode_config() -> str:
    """The reference receiver: BIRD2 learns both families over one eBGP session and exports them to its kernel."""
    return f"""router id {BIRDNODE_IP};
timeformat protocol iso long us;
protocol device {{ }}
protocol kernel k4 {{ ipv4 {{ import none; export all; }}; }}
protocol kernel k6 {{ ipv6 {{ import none; export all; }}; }}
protocol bgp injector {{
  local {BIRDNODE_IP} as {BIRDNODE_ASN};
  neighbor {INJECTOR_IP} as {INJECTOR_ASN};
  {TIMERS}
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"""


def process_name(pid: int) -> str:
    """agent, exabgp or helper (the `cat` the API relay execs into), from the process's command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    if "exabgp" in text:
        return "exabgp"
    if "bgpnet-relay-wait" in text or "relay" in text:
        return "helper"
    return "agent" if "agent" in text else Path(argv[0].decode(errors="replace")).name


@dataclass
class Receiver:
    """One receiving node: `session` is its protocol's name at the injector, `counters` its kernel route counts
    per IP version."""

    name: str
    session: str
    counters: dict[int, FibCounter]

    def pids(self) -> list[int]:
        raise NotImplementedError

    def rss_mb(self) -> float:
        return round(tree_rss_kib(self.pids()) / 1024, 1)

    def rss_parts_mb(self) -> dict[str, float]:
        """RSS per process of the tree, by command name (agent, ExaBGP, its helper): where the memory is."""
        parts: dict[str, float] = {}
        for pid in self.pids():
            name = process_name(pid)
            parts[name] = round(parts.get(name, 0.0) + tree_rss_kib([pid]) / 1024, 1)
        return parts


@dataclass
class BgpnetReceiver(Receiver):
    cluster: Cluster = field(repr=False, default=None)  # type: ignore[assignment]
    node: ClusterNode = field(repr=False, default=None)  # type: ignore[assignment]
    env: dict[str, str] | None = None
    cpus: set[int] | None = None

    def start(self) -> None:
        agent = self.cluster.start_agent(self.node, log_level="info", env=self.env)
        if self.cpus:
            pin(agent.pid, self.cpus)  # before it starts ExaBGP, which inherits the affinity
        wait_for(lambda: len(self.pids()) >= 3, 30, what="agent, ExaBGP and its API helper")
        wait_idle(self.pids(), window=0.5)

    def stop(self) -> None:
        stop_agent(self.cluster, self.node)

    def pids(self) -> list[int]:
        return agent_pids(self.node)


@dataclass
class BirdReceiver(Receiver):
    router: BirdRouter = field(repr=False, default=None)  # type: ignore[assignment]
    group: NetnsGroup = field(repr=False, default=None)  # type: ignore[assignment]
    cpus: set[int] | None = None

    def start(self) -> None:
        self.router.start(birdnode_config())
        if self.cpus and self.router.proc is not None:
            pin(self.router.proc.pid, self.cpus)
        wait_idle(self.pids(), window=0.5)

    def stop(self) -> None:
        self.router.stop(self.group)

    def pids(self) -> list[int]:
        return [self.router.proc.pid] if self.router.proc is not None else []


class Bench:
    """The lab (segment, node1, injector, birdnode) and the measurements on it."""

    def __init__(self, group: NetnsGroup, workdir: Path, feeds: dict[int, list[int]], churn: int, *,
                 pin_cpus: bool, agent_pythonpath: str | None) -> None:
        self.group = group
        self.cluster = Cluster(group, workdir)  # agents get --kubeconfig, as users run `bgpnet agent`
        self.node = self.cluster.add_node(1, start_agent=False, extra_config={
            "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3600,
            "peers": [{"address": INJECTOR_IP, "asn": INJECTOR_ASN, "families": ["ipv4", "ipv6"]}]})
        self.node.ns.run("ip", "addr", "add", f"{NODE_IP6}/64", "dev", "eth0", "nodad")
        injector = segment_router(self.cluster, "inj", [f"{INJECTOR_IP}/24", f"{INJECTOR_IP6}/64"])
        birdnode = segment_router(self.cluster, "bird", [f"{BIRDNODE_IP}/24", f"{BIRDNODE_IP6}/64"])
        # Delayed ACKs would stall the injector's TCP sender ~40 ms now and then: ACK at once on these paths.
        for ns, peers in ((injector.ns, (self.node.ip, BIRDNODE_IP)), (self.node.ns, (INJECTOR_IP,)),
                          (birdnode.ns, (INJECTOR_IP,))):
            for peer in peers:
                ns.run("ip", "route", "add", f"{peer}/32", "dev", "eth0", "quickack", "1")
        injector.start(injector_config(feeds, churn, [("node1", self.node.ip, NODE_ASN),
                                                      ("birdnode", BIRDNODE_IP, BIRDNODE_ASN)]))
        self.injector = injector
        receiver_cpus, injector_cpus = ({1}, {0}) if pin_cpus else (None, None)
        if injector_cpus and injector.proc is not None:
            pin(injector.proc.pid, injector_cpus)
        env = {**os.environ, "PYTHONPATH": agent_pythonpath} if agent_pythonpath else None
        self.bgpnet = BgpnetReceiver("bgpnet", "node1", self._counters(self.node.ns.path), cluster=self.cluster,
                                     node=self.node, env=env, cpus=receiver_cpus)
        self.bird = BirdReceiver("bird", "birdnode", self._counters(birdnode.ns.path), router=birdnode,
                                 group=group, cpus=receiver_cpus)
        self.ctl = BirdControl(str(injector.socket))

    @staticmethod
    def _counters(netns_path: str) -> dict[int, FibCounter]:
        return {4: FibCounter(netns_path, 4), 6: FibCounter(netns_path, 6)}

    def poke(self) -> None:
        self.ctl.command("show status")  # see the module docstring: BIRD's missed wakeup

    def watch(self, counter: FibCounter, target: int):
        return watch_count(counter, target, timeout=TIMEOUT_S, poke=self.poke)

    def repetition(self, receiver: Receiver, version: int, n: int) -> dict[str, float]:
        """One install / withdraw / feed-on-established cycle of one receiver (see the module docstring)."""
        feed, counter = feed_name(version, n), receiver.counters[version]
        base = counter.count()
        pids = receiver.pids()
        self.ctl.command(f"enable {feed}")  # no session is up: nothing is exported yet
        cpu_before = cpu_ns(pids)
        cpu_parts_before = {pid: cpu_ns([pid]) for pid in pids}
        enabled = time.time()
        self.ctl.command(f"enable {receiver.session}")
        installed = self.watch(counter, base + n)
        established = bird_since(self.ctl.command(f"show protocols {receiver.session}"), receiver.session)
        wait_idle(pids)
        cpu_s = (cpu_ns(pids) - cpu_before) / 1e9
        cpu_parts: dict[str, float] = {}  # where the CPU went: agent, ExaBGP, helper
        for pid, before in cpu_parts_before.items():
            name = process_name(pid)
            cpu_parts[name] = round(cpu_parts.get(name, 0.0) + (cpu_ns([pid]) - before) / 1e9, 4)
        rss_mb, rss_parts = receiver.rss_mb(), receiver.rss_parts_mb()
        started = time.time()
        self.ctl.command(f"disable {feed}")
        withdrawn = self.watch(counter, base)
        wait_idle(pids)
        started_feed = time.time()
        self.ctl.command(f"enable {feed}")
        fed = self.watch(counter, base + n)
        wait_idle(pids)
        self.ctl.command(f"disable {feed}")
        self.watch(counter, base)
        self.ctl.command(f"disable {receiver.session}")
        wait_idle(pids)
        assert installed.first is not None
        return {"install_s": installed.done - established, "first_route_s": installed.first - established,
                "install_from_enable_s": installed.done - enabled, "withdraw_s": withdrawn.done - started,
                "feed_install_s": fed.done - started_feed, "cpu_s": cpu_s, "rss_mb": rss_mb,
                "rss_parts_mb": rss_parts, "cpu_parts_s": cpu_parts}

    def churn(self, prefixes: int) -> dict:
        """500k prefix updates over `prefixes` on node1's session, then the full withdrawal (module docstring)."""
        counter = self.bgpnet.counters[4]
        base = counter.count()
        pids = self.bgpnet.pids()
        self.ctl.command("enable node1")
        wait_for(lambda: "Established" in self.ctl.command("show protocols node1"), 30, 0.05,
                 "node1's session at the injector")
        wait_idle(pids)
        updates = 0
        started = time.perf_counter()
        # (command, kernel count afterwards): replacements leave the count alone, so the agent's own counters
        # say when they have all been received.
        for command, routes in (("enable churna", prefixes), ("enable churnb", prefixes),
                                ("disable churnb", prefixes), ("disable churna", 0), ("enable churnb", prefixes)):
            received = self._updates_received()
            self.ctl.command(command)
            wait_for(lambda r=received: self._updates_received() - r >= prefixes, TIMEOUT_S, 0.25,
                     f"the agent to receive {prefixes} updates after {command!r}")
            self.watch(counter, base + routes)
            wait_idle(pids)
            updates += prefixes
        churn_s = time.perf_counter() - started
        self.ctl.command("disable churnb")
        self.watch(counter, base)
        wait_idle(pids, window=1.0)
        rss_mb, parts = self.bgpnet.rss_mb(), self.bgpnet.rss_parts_mb()
        self.ctl.command("disable node1")
        wait_idle(pids)
        return {"prefixes": prefixes, "updates": updates, "churn_s": round(churn_s, 2), "rss_after_mb": rss_mb,
                "rss_parts_after_mb": parts}

    def _updates_received(self) -> float:
        metrics = agent_metrics(self.node)
        return (metric_total(metrics, "bgpnet_bgp_prefixes_received_total")
                + metric_total(metrics, "bgpnet_bgp_withdrawals_received_total"))

    def resync(self, n: int, period: float, repeat: int) -> dict:
        """Withdrawal of one prefix with and without a resync in progress, at `n` IPv4 routes (docstring).

        A repetition takes two periods: it starts at the end of a resync nothing else was near (so the agent's
        last-sync timestamp is that resync's), withdraws and re-announces the prefix mid-period, then withdraws
        it again when the next resync's kernel phase begins and checks that this resync ended meanwhile."""
        update_agent_config(self.node, routeSyncPeriod=period)
        self.bgpnet.start()
        counter = self.bgpnet.counters[4]
        without = counter.count() + n
        for command in (f"enable {feed_name(4, n)}", "enable single", "enable node1"):
            self.ctl.command(command)
        self.watch(counter, without + 1)
        quiet, during, overlapped, durations = [], [], [], []
        for _ in range(repeat):
            end, duration = self._resync_done()
            durations.append(duration)
            quiet.append(self._withdraw_single(end + (period - duration) / 2, counter, without))
            self._announce_single(counter, without)
            resyncs = self._resync_count()
            during.append(self._withdraw_single(end + period - duration, counter, without))
            overlapped.append(self._resync_count() > resyncs)
            self._announce_single(counter, without)
        for command in ("disable node1", "disable single", f"disable {feed_name(4, n)}"):
            self.ctl.command(command)
        self.bgpnet.stop()
        return {"routes": n, "period_s": period, "repetitions": repeat, "resync_duration_s": spread(durations),
                "withdraw_quiet_s": spread(quiet), "withdraw_during_resync_s": spread(during),
                "overlapped": overlapped, "delay_s": round(median(during) - median(quiet), 4)}

    def _withdraw_single(self, at: float, counter: FibCounter, without: int) -> float:
        """At Unix time `at` (or now, if past), withdraw the single prefix: its latency to the kernel."""
        time.sleep(max(0.0, at - time.time()))
        started = time.time()
        self.ctl.command("disable single")
        return self.watch(counter, without).done - started

    def _announce_single(self, counter: FibCounter, without: int) -> None:
        self.ctl.command("enable single")
        self.watch(counter, without + 1)

    def _resync_count(self) -> float:
        return agent_metrics(self.node)["bgpnet_route_sync_duration_seconds_count{kind=resync}"]

    def _resync_done(self) -> tuple[float, float]:
        """(end, duration) of the next resync the agent completes, from its metrics polled every 20 ms."""
        def state() -> tuple[float, float, float]:
            m = agent_metrics(self.node)
            return (m["bgpnet_route_sync_duration_seconds_count{kind=resync}"],
                    m["bgpnet_route_sync_duration_seconds_sum{kind=resync}"],
                    m["bgpnet_route_sync_last_timestamp_seconds{}"])

        count, total, _ = state()
        while True:
            time.sleep(0.02)
            new_count, new_total, last = state()
            if new_count > count:
                return last, (new_total - total) / (new_count - count)


def measure_family(bench: Bench, version: int, sizes: list[int], repeat: int, *, churn: int,
                   profile: Path | None) -> tuple[list[dict], dict]:
    """Fresh receivers, then for each size `repeat` alternating repetitions (bgpnet, BIRD, bgpnet, ...)."""
    receivers = (bench.bgpnet, bench.bird)
    for receiver in receivers:
        receiver.start()
    memory: dict = {"idle_mb": {r.name: r.rss_mb() for r in receivers}, "loadavg_start": loadavg(),
                    "parts_mb": {"idle": bench.bgpnet.rss_parts_mb()}}
    rows = []
    for n in sizes:
        runs: dict[str, list[dict]] = {r.name: [] for r in receivers}
        for rep in range(repeat):
            for receiver in receivers:
                profiler = None
                if profile and rep == 0 and receiver is bench.bgpnet:
                    profiler = Profiler(profile, receiver.pids(), f"ipv{version}-{n}")
                sample = bench.repetition(receiver, version, n)
                parts, cpu_parts = sample.pop("rss_parts_mb"), sample.pop("cpu_parts_s")
                if receiver is bench.bgpnet:
                    memory["parts_mb"][str(n)] = parts  # the last repetition's, per process
                    memory.setdefault("cpu_parts_s", {}).setdefault(str(n), []).append(cpu_parts)
                runs[receiver.name].append(sample)
                if profiler is not None:
                    profiler.stop()
                print(f"  ipv{version} {n} #{rep + 1} {receiver.name}: " + ", ".join(
                    f"{k}={v:.4g}" for k, v in sample.items()) + f" rss_parts_mb={parts} cpu_parts_s={cpu_parts}",
                      file=sys.stderr,
                      flush=True)
        rows.append(summarize(version, n, runs, loadavg()))
    memory["after_withdrawal_mb"] = {r.name: r.rss_mb() for r in receivers}
    memory["parts_mb"]["after_withdrawal"] = bench.bgpnet.rss_parts_mb()
    if churn:
        memory["churn"] = bench.churn(churn)
        memory["parts_mb"]["after_churn"] = memory["churn"]["rss_parts_after_mb"]
        at_largest = max(rows, key=lambda r: r["prefixes"])
        memory["churn"]["rss_at_mb"] = {"prefixes": at_largest["prefixes"],
                                        "mb": at_largest["bgpnet"]["rss_mb"]["max"]}
        memory["churn"]["ratio"] = ratio(memory["churn"]["rss_after_mb"], at_largest["bgpnet"]["rss_mb"]["max"])
    memory["loadavg_end"] = loadavg()
    for receiver in receivers:
        receiver.stop()
    return rows, memory


MEASURES = ("install_s", "first_route_s", "withdraw_s", "cpu_s", "rss_mb", "install_from_enable_s",
            "feed_install_s")


def summarize(version: int, n: int, runs: dict[str, list[dict]], load: str) -> dict:
    """Per measure and receiver: median, min, max and the sample; ratio bgpnet/BIRD of the medians and the
    range of the per-repetition ratios (repetition i of bgpnet against repetition i of BIRD)."""
    row: dict = {"family": f"ipv{version}", "prefixes": n, "prefix_length": FEEDS[version][1],
                 "repetitions": len(runs["bgpnet"]), "loadavg": load}
    for name, samples in runs.items():
        row[name] = {key: spread([s[key] for s in samples]) for key in MEASURES}
    row["ratio"] = {}
    for key in MEASURES:
        pairs = [ratio(a[key], b[key]) for a, b in zip(runs["bgpnet"], runs["bird"], strict=True)]
        pairs = [p for p in pairs if p is not None]
        row["ratio"][key] = {"of_medians": ratio(row["bgpnet"][key]["median"], row["bird"][key]["median"]),
                             "min": min(pairs, default=None), "max": max(pairs, default=None)}
    return row


LABELS = {"install_s": ("install (from Established)", 1e3, "ms"), "first_route_s": ("first route", 1e3, "ms"),
          "withdraw_s": ("withdraw all", 1e3, "ms"), "cpu_s": ("CPU, install", 1e3, "ms"),
          "rss_mb": ("RSS with the routes", 1, "MB"),
          "install_from_enable_s": ("install (from session enable)", 1e3, "ms"),
          "feed_install_s": ("install (feed on established session)", 1e3, "ms")}


def _figure(stats: dict, scale: float) -> str:
    return f"{stats['median'] * scale:.1f} ({stats['min'] * scale:.1f}-{stats['max'] * scale:.1f})"


def render(rows: list[dict]) -> str:
    table = []
    for row in rows:
        for key, (label, scale, unit) in LABELS.items():
            r = row["ratio"][key]
            span = f" ({r['min']:.2f}-{r['max']:.2f})" if r["min"] is not None else ""
            table.append([f"{row['family']} {row['prefixes']}", f"{label}, {unit}", _figure(row["bgpnet"][key], scale),
                          _figure(row["bird"][key], scale),
                          f"{r['of_medians']:.2f}x{span}" if r["of_medians"] is not None else "-"])
    return format_table(["feed", "measure", "bgpnet median (min-max)", "BIRD2 median (min-max)",
                         "bgpnet/BIRD (per-rep range)"], table)


def render_memory(memory: dict[str, dict], rows: list[dict]) -> str:
    table = []
    for family, m in memory.items():
        table.append([family, "no routes (fresh)", m["idle_mb"]["bgpnet"], m["idle_mb"]["bird"]])
        for row in rows:
            if row["family"] == family:
                table.append([family, f"{row['prefixes']} routes (max)", row["bgpnet"]["rss_mb"]["max"],
                              row["bird"]["rss_mb"]["max"]])
        table.append([family, "after withdrawing all", m["after_withdrawal_mb"]["bgpnet"],
                      m["after_withdrawal_mb"]["bird"]])
        churn = m.get("churn")
        if churn:
            table.append([family, f"after {churn['updates']} updates over {churn['prefixes']} prefixes + "
                          f"withdrawal ({churn['ratio']}x the {churn['rss_at_mb']['prefixes']} figure)",
                          churn["rss_after_mb"], None])
    out = format_table(["family", "RSS, MB (bgpnet: agent + ExaBGP + helper)", "bgpnet", "BIRD2"], table)
    for family, m in memory.items():
        for n, samples in m.get("cpu_parts_s", {}).items():
            names = sorted({name for sample in samples for name in sample})
            out += f"{family} {n} bgpnet install CPU per process, median ms: " + ", ".join(
                f"{name} {median(s.get(name, 0.0) for s in samples) * 1e3:.0f}" for name in names) + "\n"
        out += f"{family} bgpnet RSS per process, MB: " + "; ".join(
            f"{when}: " + ", ".join(f"{name} {mb}" for name, mb in parts.items())
            for when, parts in m["parts_mb"].items()) + "\n"
    return out


def render_resync(resync: dict) -> str:
    overlapped = sum(resync["overlapped"])
    rows = [["without a resync", _figure(resync["withdraw_quiet_s"], 1e3)],
            [f"during a resync ({overlapped}/{len(resync['overlapped'])} overlapped)",
             _figure(resync["withdraw_during_resync_s"], 1e3)],
            ["delay (difference of medians)", f"{resync['delay_s'] * 1e3:.1f}"],
            ["resync duration (agent's metric)", _figure(resync["resync_duration_s"], 1e3)]]
    return format_table([f"one withdrawal at {resync['routes']} IPv4 routes, routeSyncPeriod "
                         f"{resync['period_s']:g} s", "ms, median (min-max)"], rows)


class Profiler:
    """py-spy recording processes while one repetition runs (collapsed stacks: `<tag>-<pid>.txt`)."""

    def __init__(self, out_dir: Path, pids: list[int], tag: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.procs = [subprocess.Popen([py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "500",
                                        "--threads", "--gil", "--nonblocking",
                                        "--output", str(out_dir / f"{tag}-{pid}.txt")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids[:2]]
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 prefixes per family, one repetition, no churn")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="prefixes per feed")
    parser.add_argument("--families", default="4,6", help="IP versions to measure (default 4,6)")
    parser.add_argument("--repeat", type=int, help="alternating repetitions per size (default 5)")
    parser.add_argument("--no-churn", action="store_true")
    parser.add_argument("--resync-period", type=float, help="routeSyncPeriod of the resync test (default 5 s)")
    parser.add_argument("--pin", action="store_true", help="receiver on CPU 1, injector on CPU 0 (sched affinity)")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of agent and ExaBGP into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (agent and BIRD logs)")
    parser.add_argument("--agent-pythonpath", help="run the agent from another bgpnet source tree (e.g. an older "
                        "commit from `git archive`), to measure before/after in the same harness")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([200] if args.quick else [10_000, 50_000])
    versions = [int(v) for v in args.families.split(",")]
    repeat = args.repeat or (1 if args.quick else 5)
    churn = 0 if args.quick or args.no_churn or 4 not in versions else CHURN_PREFIXES
    period = args.resync_period or (2.0 if args.quick else 5.0)
    feeds = {v: sizes for v in versions}
    load_start = loadavg()
    rows: list[dict] = []
    memory: dict[str, dict] = {}
    resync = None
    with work_directory("bench-route-install-", args.keep) as workdir, NetnsGroup("bgpri") as group:
        bench = Bench(group, workdir, feeds, churn, pin_cpus=args.pin, agent_pythonpath=args.agent_pythonpath)
        try:
            for version in versions:
                family_rows, memory[f"ipv{version}"] = measure_family(
                    bench, version, sizes, repeat, churn=churn if version == 4 else 0, profile=args.profile)
                rows += family_rows
            if 4 in versions:
                resync = bench.resync(max(sizes), period, 1 if args.quick else 3)
        finally:
            bench.ctl.close()
    load_end = loadavg()
    print(render(rows), end="")
    print()
    print(render_memory(memory, rows), end="")
    if resync:
        print()
        print(render_resync(resync), end="")
    print(f"\nload average (1, 5, 15 min): start {load_start}, end {load_end}; per feed: "
          + ", ".join(f"{r['family']} {r['prefixes']}: {r['loadavg']}" for r in rows))
    print(f"receivers one at a time, alternating; CPU pinning: "
          f"{'receiver CPU 1, injector CPU 0' if args.pin else 'none'}")
    emit_json("route_install", {
        "rows": rows, "memory": memory, "resync": resync, "goals": GOALS, "repetitions": repeat, "pinned": args.pin,
        "loadavg": {"start": load_start, "end": load_end}, "start_event": "injector session Established",
        "agent_api_config": "kubeconfig", "agent_pythonpath": args.agent_pythonpath})
    return 0


if __name__ == "__main__":
    sys.exit(main())
