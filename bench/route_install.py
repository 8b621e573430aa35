"""Route installation, BGP to kernel: bgpnet's agent against BIRD2 as the receiving node, same feed, same run.

    sudo .venv/bin/python bench/route_install.py                 # 1k, 10k, 50k prefixes, 5 repetitions
    sudo .venv/bin/python bench/route_install.py --quick         # 200 prefixes, 1 repetition (CI smoke)
    sudo .venv/bin/python bench/route_install.py --sizes 10000 --profile /tmp/prof   # + py-spy of agent/ExaBGP

Topology (one L2 segment, a bridge in the segment namespace that also hosts the Kubernetes API stand-in):
  injector   172.31.0.2  AS 65000  BIRD2: static protocols feed<N> (N /26s from 10.128.0.0), exported over
                                   eBGP to both receivers (two sessions, one routing table);
  node1      172.31.0.11 AS 64512  `bgpnet agent` (ExaBGP 4.2.25 + relay + agent + netlink route table),
                                   peering with the injector through a global `peers:` entry (no mesh);
  birdnode   172.31.0.3  AS 64513  BIRD2 importing the feed and exporting it to its kernel (protocol kernel).

The receivers are timed one at a time, never together: before each one's turn the injector's session to the
other receiver is disabled (so it receives nothing and spends no CPU while the other is measured), and within
a repetition the order alternates (bgpnet first, then BIRD first). Running both at once on the same two cores
let the agent's CPU slow BIRD down and made the ratio look better than it is. The start event is the moment
`enable feed<N>` is sent to the injector's control socket (its BGP export begins; the first UPDATE follows
within a millisecond). The clock stops when the receiver's kernel holds all N routes, counted from
/proc/net/fib_triestat inside its namespace (polled every ~0.5 ms); the first route's arrival is recorded too.
Withdrawal is timed the same way from `disable feed<N>` until the kernel is back to its baseline. RSS of the
receiver (agent + ExaBGP + helper, resp. BIRD) is read right after the install. The
injector is poked with `show status` every few ms during a feed: BIRD 2.0.12 occasionally idles ~3 s before its
last UPDATE (a missed wakeup) otherwise. Host routes with `quickack 1` between injector and receivers keep
delayed ACKs (~40 ms stalls) out of the measurement, for both receivers alike.

Prints a table and one `JSON:` line: per size the medians, the ratio bgpnet/BIRD of the medians, and the
median of the per-run ratios. Goal (issue 8): ratio <= 1.25 at 10k and 50k.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BirdControl, FibCounter, cpu_ns, emit_json, format_table, median, ratio, rss_kib

from bgpnet.lab.cluster import Cluster, wait_for
from bgpnet.lab.netns import NetnsGroup
from bgpnet.lab.processes import descendants

INJECTOR_IP, INJECTOR_ASN = "172.31.0.2", 65000
BIRDNODE_IP, BIRDNODE_ASN = "172.31.0.3", 64513
FEED_BASE = 0x0A800000  # 10.128.0.0: inside the bench's clusterCIDR 10.0.0.0/8, clear of 10.244.0.0/16 pod CIDRs
CLUSTER_CIDR = "10.0.0.0/8"
GOAL = 1.25
TIMEOUT_S = 180.0


def feed_prefixes(n: int) -> list[str]:
    out = []
    for i in range(n):
        value = FEED_BASE + (i << 6)
        out.append(f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}/26")
    return out


def injector_config(sizes: list[int], receivers: list[tuple[str, str, int]]) -> str:
    """BIRD2 injector: one disabled static protocol per size (enabled to start a feed), one eBGP session per
    receiver exporting everything. Timers short enough that a setup problem shows quickly."""
    parts = [f"router id {INJECTOR_IP};", "protocol device { }"]
    for n in sizes:
        routes = "".join(f"  route {p} blackhole;\n" for p in feed_prefixes(n))
        parts.append(f"protocol static feed{n} {{\n  disabled;\n  ipv4;\n{routes}}}")
    for name, address, asn in receivers:
        parts.append(f"""protocol bgp {name} {{
  local {INJECTOR_IP} as {INJECTOR_ASN};
  neighbor {address} as {asn};
  hold time 90; keepalive time 30; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import none; export all; }};
}}""")
    return "\n".join(parts) + "\n"


def birdnode_config() -> str:
    """The reference receiver: BIRD2 learns the feed over eBGP and exports it to its kernel."""
    return f"""router id {BIRDNODE_IP};
protocol device {{ }}
protocol kernel {{
  ipv4 {{ import none; export all; }};
}}
protocol bgp injector {{
  local {BIRDNODE_IP} as {BIRDNODE_ASN};
  neighbor {INJECTOR_IP} as {INJECTOR_ASN};
  hold time 90; keepalive time 30; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export none; }};
}}
"""


class Bench:
    """The three namespaces and their processes; `feed(n)` times one announce and one withdraw."""

    def __init__(self, group: NetnsGroup, workdir: Path, sizes: list[int], *, agent_log_level: str = "info",
                 agent_pythonpath: str | None = None) -> None:
        self.agent_pythonpath = agent_pythonpath
        self.workdir = workdir
        self.cluster = Cluster(group, workdir, cluster_cidr=CLUSTER_CIDR)
        segment = self.cluster.segment
        # node1 runs the real agent; the injector is a global peer, so no mesh and no other Node is needed.
        self.node = self.cluster.add_node(1, start_agent=False, extra_config={
            "nodeToNodeMesh": False, "routeSyncPeriod": 600,
            "peers": [{"address": INJECTOR_IP, "asn": INJECTOR_ASN}]})
        self.injector = self._router(group, "inj", INJECTOR_IP, segment)
        self.birdnode = self._router(group, "bird", BIRDNODE_IP, segment)
        # Delayed ACKs would stall the injector's TCP sender ~40 ms now and then: ACK at once on these paths.
        for ns, peers in ((self.injector.ns, (self.node.ip, BIRDNODE_IP)), (self.node.ns, (INJECTOR_IP,)),
                          (self.birdnode.ns, (INJECTOR_IP,))):
            for peer in peers:
                ns.run("ip", "route", "add", f"{peer}/32", "dev", "eth0", "quickack", "1")
        self.birdnode.start(birdnode_config())
        self.injector.start(injector_config(sizes, [("node1", self.node.ip, 64512),
                                                    ("birdnode", BIRDNODE_IP, BIRDNODE_ASN)]))
        self.agent = self._start_agent(agent_log_level)
        self.ctl = BirdControl(str(self.injector.socket))
        self.fib_bgpnet = FibCounter(self.node.ns.path)
        self.fib_bird = FibCounter(self.birdnode.ns.path)
        wait_for(lambda: self._established("node1") and self._established("birdnode"), 60,
                 what="both injector sessions to be established")
        time.sleep(0.5)  # let ExaBGP's helper and the agent's first reconcile settle

    def _router(self, group: NetnsGroup, short: str, ip: str, segment) -> BirdRouter:
        ns = group.add(short)
        ns.as_router()
        group.veth(ns, "eth0", segment, f"p{short}")
        segment.run("ip", "link", "set", f"p{short}", "master", "br0")
        ns.run("ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        return BirdRouter(ns, self.workdir / short)

    def _start_agent(self, level: str) -> subprocess.Popen:
        env = dict(os.environ)
        if self.agent_pythonpath:  # another bgpnet tree's agent, speaker and relay (before/after comparisons)
            env["PYTHONPATH"] = self.agent_pythonpath
        return self.cluster.start_agent(self.node, log_level=level, env=env)

    def _established(self, protocol: str) -> bool:
        reply = self.ctl.command("show protocols")
        return any(line.split()[:1] == [protocol] and "Established" in line for line in reply.splitlines())

    def _only(self, receiver: str) -> None:
        """Leave only the injector's session to `receiver` up: the other receiver gets nothing and idles."""
        other = "birdnode" if receiver == "node1" else "node1"
        self.ctl.command(f"disable {other}")
        self.ctl.command(f"enable {receiver}")
        wait_for(lambda: self._established(receiver), 60, what=f"the injector's session to {receiver}")
        time.sleep(0.5)  # the receiver's own start-of-session work (End-of-RIB, first reconcile) is over

    def exabgp_pid(self) -> int | None:
        pid_file = self.node.run_dir / "exabgp.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def counts(self) -> tuple[int, int]:
        return self.fib_bgpnet.count(), self.fib_bird.count()

    def _race(self, command: str, counter: FibCounter, target: int) -> tuple[float, float]:
        """Send `command` to the injector, then poll one kernel until it reaches `target`; (seconds to the first
        change, seconds to the target)."""
        base = counter.count()
        first: float | None = None
        done: float | None = None
        last_poke = started = time.perf_counter()
        self.ctl.command(command)
        while done is None:
            now = time.perf_counter()
            count = counter.count()
            if first is None and count != base:
                first = now - started
            if count == target:
                done = now - started
            polled = time.perf_counter()
            if polled - last_poke > 0.005:
                self.ctl.command("show status")  # see the module docstring: BIRD's missed wakeup
                last_poke = polled
            if polled - started > TIMEOUT_S:
                raise TimeoutError(f"{command}: count {counter.count()} never reached {target}")
            # Reading fib_triestat walks the whole trie (~25 µs per 1k routes): sleeping 8x the read time keeps
            # the poller near 10 % of one core, so it steals little CPU from the receivers it measures, at a
            # resolution of ~1 % of the measured time.
            time.sleep(max(0.0005, 8 * (polled - now)))
        return first if first is not None else done, done

    def feed(self, n: int, bird_first: bool = False) -> dict[str, float]:
        """One announce and one withdraw of N prefixes, timed for each receiver in turn."""
        out: dict[str, float] = {}
        for name in (("bird", "bgpnet") if bird_first else ("bgpnet", "bird")):
            counter = self.fib_bgpnet if name == "bgpnet" else self.fib_bird
            pids = ([self.agent.pid, *descendants(self.agent.pid)] if name == "bgpnet"  # agent, ExaBGP, helper
                    else [self.birdnode.proc.pid] if self.birdnode.proc else [])
            self._only("node1" if name == "bgpnet" else "birdnode")
            base = counter.count()
            cpu_before = cpu_ns(pids)
            first, install = self._race(f"enable feed{n}", counter, base + n)
            self._settle()
            cpu = (cpu_ns(pids) - cpu_before) / 1e9  # the race and the settle window: the receiver's whole work
            rss = sum(rss_kib(pid) for pid in pids) / 1024
            _, withdraw = self._race(f"disable feed{n}", counter, base)
            self._settle()
            out.update({f"install_{name}_s": install, f"withdraw_{name}_s": withdraw,
                        f"install_cpu_{name}_s": cpu, f"first_route_{name}_s": first, f"rss_{name}_mb": rss})
        return out

    def _settle(self) -> None:
        # The next phase starts only when the receivers are idle again (ExaBGP may still be emitting EoR
        # bookkeeping; the agent may still be recording its apply).
        time.sleep(0.3)

    def close(self) -> None:
        self.ctl.close()
        self.fib_bgpnet.close()
        self.fib_bird.close()


class BirdRouter:
    def __init__(self, ns, workdir: Path) -> None:
        self.ns = ns
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "bird.ctl"
        self.proc: subprocess.Popen | None = None

    def start(self, config: str) -> None:
        conf = self.workdir / "bird.conf"
        conf.write_text(config)
        with open(self.workdir / "bird.log", "w") as log:
            self.proc = self.ns.spawn(["bird", "-f", "-c", str(conf), "-s", str(self.socket),
                                       "-P", str(self.workdir / "bird.pid")],
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self.socket.exists, 30, what=f"BIRD control socket {self.socket}")


class Profiler:
    """py-spy (if given) recording the agent and its ExaBGP while one feed runs (collapsed stacks)."""

    def __init__(self, py_spy: str, out_dir: Path, pids: dict[str, int], tag: str) -> None:
        self.procs = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            out = out_dir / f"{tag}-{name}.txt"
            self.procs.append((out, subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "500", "--threads", "--gil",
                 "--output", str(out), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> list[Path]:
        import signal

        for _, proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            proc.wait(timeout=30)
        return [out for out, _ in self.procs]


def self_time_top(collapsed: Path, limit: int = 15) -> list[tuple[str, float]]:
    """Share of samples per innermost frame of a py-spy raw (collapsed) profile, biggest first."""
    totals: dict[str, int] = {}
    all_samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        totals[leaf] = totals.get(leaf, 0) + int(count)
        all_samples += int(count)
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(frame, round(100 * n / all_samples, 1)) for frame, n in top]


def summarize(runs: dict[int, list[dict[str, float]]]) -> dict:
    out = {}
    for n, samples in runs.items():
        row = {key: round(median(s[key] for s in samples), 4) for key in samples[0]}
        row["install_ratio"] = ratio(row["install_bgpnet_s"], row["install_bird_s"])
        row["withdraw_ratio"] = ratio(row["withdraw_bgpnet_s"], row["withdraw_bird_s"])
        if "install_cpu_bgpnet_s" in row:
            row["install_cpu_ratio"] = ratio(row["install_cpu_bgpnet_s"], row["install_cpu_bird_s"])
        row["install_ratio_median_of_runs"] = round(median(s["install_bgpnet_s"] / s["install_bird_s"]
                                                           for s in samples), 3)
        row["withdraw_ratio_median_of_runs"] = round(median(s["withdraw_bgpnet_s"] / s["withdraw_bird_s"]
                                                            for s in samples), 3)
        row["install_bgpnet_range_s"] = [round(min(s["install_bgpnet_s"] for s in samples), 4),
                                         round(max(s["install_bgpnet_s"] for s in samples), 4)]
        row["install_bird_range_s"] = [round(min(s["install_bird_s"] for s in samples), 4),
                                       round(max(s["install_bird_s"] for s in samples), 4)]
        row["repetitions"] = len(samples)
        out[str(n)] = row
    return out


def render(summary: dict) -> str:
    rows = []
    for n, row in summary.items():
        rows.append([n, row["install_bgpnet_s"] * 1e3, row["install_bird_s"] * 1e3, f"{row['install_ratio']}x",
                     row["withdraw_bgpnet_s"] * 1e3, row["withdraw_bird_s"] * 1e3, f"{row['withdraw_ratio']}x",
                     row.get("install_cpu_bgpnet_s", float("nan")) * 1e3,
                     row.get("install_cpu_bird_s", float("nan")) * 1e3, f"{row.get('install_cpu_ratio')}x"])
        rows[-1] += [row.get("first_route_bgpnet_s", float("nan")) * 1e3,
                     row.get("first_route_bird_s", float("nan")) * 1e3,
                     row.get("rss_bgpnet_mb", float("nan")), row.get("rss_bird_mb", float("nan"))]
    return format_table(["prefixes", "install bgpnet ms", "install BIRD ms", "ratio", "withdraw bgpnet ms",
                         "withdraw BIRD ms", "ratio", "install CPU bgpnet ms", "install CPU BIRD ms", "ratio",
                         "first route bgpnet ms", "first route BIRD ms", "RSS bgpnet MB", "RSS BIRD MB"],
                        rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 prefixes, one repetition")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of agent and ExaBGP into DIR")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (agent and BIRD logs)")
    parser.add_argument("--agent-pythonpath", help="run the agent from another bgpnet source tree (e.g. an older "
                        "commit from `git archive`), to measure before/after in the same harness")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([200] if args.quick else [1000, 10_000, 50_000])
    repeat = args.repeat or (1 if args.quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="bench-route-install-"))
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in sizes}
    profiles: dict[str, list] = {}
    try:
        with NetnsGroup("bgpri") as group:
            bench = Bench(group, workdir, sizes, agent_pythonpath=args.agent_pythonpath)
            try:
                bench.feed(min(sizes))  # warm-up: first-use costs (imports, caches) are not the steady state
                for n in sizes:
                    for rep in range(repeat):
                        profiler = None
                        if args.profile and rep == 0:
                            pids = {"agent": bench.agent.pid, "exabgp": bench.exabgp_pid() or 0}
                            profiler = Profiler(args.py_spy, args.profile, pids, f"{n}")
                        runs[n].append(bench.feed(n, bird_first=rep % 2 == 1))
                        if profiler is not None:
                            for path in profiler.stop():
                                if path.exists():
                                    profiles[path.name] = self_time_top(path)
                        print(f"  {n} #{rep + 1}: " + ", ".join(
                            f"{k}={v * 1e3:.1f}ms" if k.endswith("_s") else f"{k}={v:.1f}"
                            for k, v in runs[n][-1].items()), file=sys.stderr, flush=True)
            finally:
                bench.close()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}", file=sys.stderr)
    summary = summarize(runs)
    print(render(summary), end="")
    for name, top in profiles.items():
        print(f"\npy-spy self time, {name}:")
        for frame, share in top:
            print(f"  {share:5.1f}%  {frame}")
    emit_json("route_install", {"sizes": summary, "goal_ratio": GOAL, "start_event": "birdc enable feed<N>",
                                "method": "one receiver at a time, order alternating per repetition",
                                "agent_pythonpath": args.agent_pythonpath,
                                "runs": {str(n): r for n, r in runs.items()},
                                "profiles": profiles or None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
