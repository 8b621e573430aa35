"""Silent-failure detection with BFD: how soon a node drops the routes of a peer that went silent, bgpnet's agent
against BIRD2 as the detecting node, with BFD at 300 ms x 3, at 100 ms x 3, and without BFD (hold time 9 s).

    sudo .venv/bin/python bench/bfd_detection.py                # 10 repetitions, 50,000-prefix table (~10 min)
    sudo .venv/bin/python bench/bfd_detection.py --quick        # 2 repetitions, 2,000-prefix table (CI smoke)
    sudo .venv/bin/python bench/bfd_detection.py --modes bfd100 --repetitions 20 --no-false-downs
    sudo .venv/bin/python bench/bfd_detection.py --modes '' --false-down-mode bfd100   # false downs alone

Topology (fresh namespaces, prefix `bgpbfd`; every address below lives in one of them):
  peer     BIRD2, AS 65000: a static protocol `feed` (100 /26s from 10.128.0.0), a disabled one `bulk`
           (the false-down test's 50,000 /26s from 10.16.0.0), `protocol bfd`, and one disabled eBGP session
           per detector (hold 9 s, keepalive 3 s, graceful restart off, `bfd { ... }` with the mode's timers);
  node1    `bgpnet agent --kubeconfig ...` (agent + ExaBGP + its helper + the BFD process it spawns), AS 64512,
           link `uplink` 10.97.1.2/30 <-> peer `tonode` 10.97.1.1/30 (one veth: single hop); the peer is a global
           `peers` entry with the mode's `bfd` settings; its `eth0` is on the lab segment only for the
           Kubernetes API stand-in (`python -m integration.kube_api`, via bgpnet.lab.cluster, as other benches);
  birddet  BIRD2 (the anchor), AS 64513, link `uplink` 10.97.2.2/30 <-> peer `tobird` 10.97.2.1/30, the same BGP
           and BFD timers, learned routes exported to its kernel (`protocol kernel`).

One repetition for one detector (the other one has no session at all: its session is disabled at the peer, so
it neither peers nor exchanges BFD packets, and only one detector is ever timed):
  1. the peer's session to the detector is enabled; wait for the feed in the detector's kernel and, with BFD,
     for the BFD session Up on both sides at the mode's rates (a session comes Up at the slow 1 s rate and
     both ends then switch with a Poll sequence, RFC 5880 §6.8.3); then a random pause (up to one BFD
     interval, or one keepalive interval without BFD) so the failure falls at any phase of the timers;
  2. silent failure: an nftables table in the PEER's namespace drops every packet in and out of its interface
     towards the detector. The link stays up (no carrier loss, no TCP reset): only timers can notice. The clock
     starts when `nft` has returned (the rule is committed) and stops when the detector's kernel no longer
     holds the feed: woken by rtnetlink route notifications in the detector's namespace, counted from
     /proc/net/fib_triestat, one process, time.monotonic();
  3. how it was detected is recorded: bgpnet's `bgpnet_bfd_session_state_changes_total{state="Down"}` moved, or
     BIRD's last error is "BFD session down" (otherwise it was the hold timer);
  4. the drop is removed; recovery is timed until the feed is back in the detector's kernel (session and BFD
     re-established: informative, it depends on both sides' reconnect timers); then the session is disabled.
Repetitions alternate bgpnet, BIRD, bgpnet, ... Each mode starts fresh processes (agent restarted with the
mode's config, both BIRDs restarted) before its repetitions.

Theory: with BFD, the detector declares the peer down Detect Mult x the agreed interval after the last packet
it received (RFC 5880 §6.8.4), so a failure is noticed 2/3 to 3/3 of multiplier x interval after it happens
(the sender jitters its interval to 75-100 %, RFC 5880 §6.8.7); without BFD, hold time after the last
KEEPALIVE (6-9 s at hold 9 / keepalive 3; BIRD shortens its hold timer by up to 25 %, RFC 4271 §10). Removing
the routes from the kernel comes on top. BIRD 2.0.12 as the detector keeps the routes ~3 s past its hold timer's
expiry: it first tries to send its NOTIFICATION over the dead connection (its log: "Hold timer expired" at
once, "State changed to flush" 3 s later), so its hold-time figure includes that wait; after a BFD down it
flushes at once.

False downs: with BFD 300 ms x 3 (or `--false-down-mode`) between node1 and the peer, the peer's 50,000-prefix
table is announced and withdrawn 3 times (enable/disable of `bulk`, timed until all are in / out of node1's
kernel); BFD downs are counted on both sides over the whole test: bgpnet's Down counter, and BIRD's own log
(`debug { events; }` of its BFD protocol), with its `show bfd sessions` line before and after and whether its
BGP session stayed up. A BFD process starved of CPU by the transfer would miss its packets and bring the
session down: expected 0.

Prints tables (p50/p90 per mode and detector, ratio of the p50s, theory beside them; load averages) and one
`JSON:` line. Figures, not verdicts: nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    BirdBfdSession,
    BirdControl,
    FibCounter,
    RouteEvents,
    bird_bfd_sessions,
    bird_since,
    block_prefixes,
    emit_json,
    format_table,
    loadavg,
    median,
    percentile,
    ratio,
    spread,
    wait_idle,
    watch_count,
    work_directory,
)
from lablib import BirdRouter, agent_metrics, agent_pids, graceful_restart_fragment, stop_agent

from bgpnet.lab.cluster import Cluster, ClusterNode, wait_for
from bgpnet.lab.netns import Netns, NetnsGroup

PEER_ASN, NODE_ASN, BIRDDET_ASN = 65000, 64512, 64513
# (peer side, detector side) of each detector's /30 link.
NODE_LINK = ("10.97.1.1", "10.97.1.2")
BIRD_LINK = ("10.97.2.1", "10.97.2.2")
FEED = ("10.128.0.0", 26)
TABLE = ("10.16.0.0", 26)  # 50k /26s: 10.16.0.0 - 10.64.211.192, clear of FEED and the links
CLUSTER_CIDRS = ["10.0.0.0/8"]
HOLD_S, KEEPALIVE_S = 9, 3
TIMERS = (f"hold time {HOLD_S}; keepalive time {KEEPALIVE_S}; connect delay time 1; connect retry time 1; "
          "error wait time 1, 2; graceful restart off;")
BLACKHOLE_TABLE = "bgpbfd_blackhole"
SESSION_TIMEOUT_S = 60.0
SETTLE_S = 1.0  # after both ends run at the mode's rates, before the failure


@dataclass(frozen=True)
class Mode:
    """How the detector notices a silent peer: BFD at `interval_ms` x `multiplier`, or (None) the hold timer."""

    name: str
    interval_ms: int | None
    multiplier: int = 3

    @property
    def label(self) -> str:
        return f"BFD {self.interval_ms} ms x {self.multiplier}" if self.interval_ms else f"hold time {HOLD_S} s"

    @property
    def theory_s(self) -> float:
        """The upper bound: multiplier x interval after the last packet, or the hold time."""
        return self.multiplier * self.interval_ms / 1000 if self.interval_ms else float(HOLD_S)

    def jitter_s(self) -> float:
        """A random pause before the failure, so it falls at any phase of the timers that detect it."""
        return random.uniform(0, self.interval_ms / 1000 if self.interval_ms else KEEPALIVE_S)


MODES = {m.name: m for m in (Mode("bfd300", 300), Mode("bfd100", 100), Mode("hold", None))}


# --- configuration (pure) --------------------------------------------------------------------------------------
def bird_bfd_option(mode: Mode) -> str:
    """A BIRD BGP protocol's BFD line: the session's own timers (BIRD 2.0.12 takes them per protocol), or nothing
    without BFD."""
    if mode.interval_ms is None:
        return ""
    return (f"bfd {{ min rx interval {mode.interval_ms} ms; min tx interval {mode.interval_ms} ms; "
            f"multiplier {mode.multiplier}; }};")


def static_protocol(name: str, prefixes: list[str], *, disabled: bool) -> str:
    routes = "".join(f"  route {p} blackhole;\n" for p in prefixes)
    return f"protocol static {name} {{\n  {'disabled; ' if disabled else ''}ipv4;\n{routes}}}"


def peer_config(mode: Mode, feed: int, table: int, log: Path) -> str:
    """The peer: the feed always on, the table disabled, one disabled session per detector. Its BFD protocol
    logs every session state change (`debug { events; }`), which the false-down test counts."""
    sessions = []
    for name, (local, neighbor), asn in (("node1", NODE_LINK, NODE_ASN), ("birddet", BIRD_LINK, BIRDDET_ASN)):
        sessions.append(f"""protocol bgp {name} {{
  disabled;
  local {local} as {PEER_ASN};
  neighbor {neighbor} as {asn};
  {TIMERS}
  {bird_bfd_option(mode)}
  ipv4 {{ import none; export all; }};
}}""")
    return "\n".join([
        f'log "{log}" all;', f"router id {NODE_LINK[0]};", "timeformat protocol iso long us;",
        "protocol device { }", "protocol bfd { debug { states, events }; }",
        static_protocol("feed", block_prefixes(feed, *FEED), disabled=False),
        static_protocol("bulk", block_prefixes(table, *TABLE), disabled=True), *sessions]) + "\n"


def birddet_config(mode: Mode) -> str:
    """The anchor detector: what it learns goes to its kernel; the same BGP and BFD timers as the peer."""
    return f"""router id {BIRD_LINK[1]};
timeformat protocol iso long us;
protocol device {{ }}
protocol bfd {{ }}
protocol kernel {{ ipv4 {{ import none; export all; }}; }}
protocol bgp peer {{
  local {BIRD_LINK[1]} as {BIRDDET_ASN};
  neighbor {BIRD_LINK[0]} as {PEER_ASN};
  {TIMERS}
  {bird_bfd_option(mode)}
  ipv4 {{ import all; export none; }};
}}
"""


def agent_bfd_config(mode: Mode) -> tuple[dict | None, dict | None]:
    """(global `bfd`, the peer's `bfd`) of the agent config. 300 ms is the global setting; 100 ms is the same
    global setting with a per-peer override, so both places where BFD is configured are exercised."""
    if mode.interval_ms is None:
        return None, None
    base = {"enabled": True, "minRx": 300, "minTx": 300, "multiplier": 3}
    if mode.interval_ms == 300 and mode.multiplier == 3:
        return base, None
    return base, {"enabled": True, "minRx": mode.interval_ms, "minTx": mode.interval_ms,
                  "multiplier": mode.multiplier}


def agent_config_changes(mode: Mode) -> dict:
    """The keys of node1's agent config that the bench sets (`bfd` is left out entirely without BFD)."""
    global_bfd, peer_bfd = agent_bfd_config(mode)
    peer = {"address": NODE_LINK[0], "asn": PEER_ASN, "holdTime": HOLD_S, **({"bfd": peer_bfd} if peer_bfd else {})}
    return {"clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "holdTime": HOLD_S, "routeSyncPeriod": 30,
            **graceful_restart_fragment(False), "peers": [peer], **({"bfd": global_bfd} if global_bfd else {})}


def blackhole_ruleset(interface: str) -> str:
    """nftables: every packet in and out of `interface` dropped (the inet family covers IPv4 and IPv6; ARP is
    left alone, as a silently failing box or path often does)."""
    return f"""table inet {BLACKHOLE_TABLE} {{
  chain in {{ type filter hook input priority -300; iifname "{interface}" drop; }}
  chain out {{ type filter hook output priority -300; oifname "{interface}" drop; }}
}}
"""


_BFD_STATE_LOG = re.compile(r"Session to (\S+) changed state from (\w+) to (\w+)")


def bird_bfd_downs(log_text: str, address: str) -> int:
    """Transitions of BIRD's BFD session to `address` from Up to Down, from its log (`debug { events; }`)."""
    return sum(1 for m in _BFD_STATE_LOG.finditer(log_text) if m.group(1) == address
               and m.group(2) == "Up" and m.group(3) == "Down")


# --- detectors -------------------------------------------------------------------------------------------------
class Detector:
    """A node that learns the feed from the peer and must notice the peer going silent. `session` is its
    protocol's name at the peer, `interface` the peer's interface towards it, `peer_ip` and `address` the two
    ends of their link."""

    name: str
    session: str
    interface: str
    peer_ip: str
    address: str
    ns: Netns

    def __init__(self) -> None:
        self.counter = FibCounter(self.ns.path)
        self.events = RouteEvents(self.ns.path)
        self.baseline = self.counter.count()  # local and connected routes only: nothing learned yet

    def start(self, mode: Mode) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bfd_ready(self, mode: Mode) -> bool:
        """Its BFD session to the peer is Up and detects at the mode's rate."""
        raise NotImplementedError

    def mark(self) -> object:
        """Whatever `cause` needs from before the failure."""
        return None

    def cause(self, mark: object) -> str:
        """How the failure was detected: "bfd", "hold", or the detector's own words."""
        raise NotImplementedError

    def close(self) -> None:
        self.counter.close()
        self.events.close()


class BgpnetDetector(Detector):
    name, session, interface, (peer_ip, address) = "bgpnet", "node1", "tonode", NODE_LINK

    def __init__(self, cluster: Cluster, node: ClusterNode) -> None:
        self.cluster, self.node, self.ns = cluster, node, node.ns
        super().__init__()

    def start(self, mode: Mode) -> None:
        path = self.node.workdir / "config.yaml"
        config = {k: v for k, v in json.loads(path.read_text()).items() if k != "bfd"}
        path.write_text(json.dumps({**config, **agent_config_changes(mode)}))
        agent = self.cluster.start_agent(self.node, log_level="info")
        # agent, ExaBGP and its API helper (+ the BFD process when BFD is on)
        wanted = 4 if mode.interval_ms else 3
        wait_for(lambda: agent.poll() is not None or len(self.pids()) >= wanted, 30, what="the agent's processes")
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited ({agent.returncode}):\n{self.cluster.agent_log(self.node)[-3000:]}")
        wait_idle(self.pids(), window=0.5)

    def stop(self) -> None:
        stop_agent(self.cluster, self.node)

    def pids(self) -> list[int]:
        return agent_pids(self.node)

    def _metric(self, name: str, default: float | None = 0.0, **labels: str) -> float | None:
        """One sample of the agent's metrics about the peer."""
        key = ",".join(f"{k}={v}" for k, v in sorted({"peer": self.peer_ip, **labels}.items()))
        return agent_metrics(self.node).get(f"{name}{{{key}}}", default)

    def bfd_ready(self, mode: Mode) -> bool:
        if self._metric("bgpnet_bfd_session_up") != 1:
            return False
        # The negotiated detection time, where the agent reports it (older agents: Up is all there is).
        negotiated = self._metric("bgpnet_bfd_detection_time_seconds", kind="negotiated", default=None)
        return negotiated is None or abs(negotiated - mode.theory_s) < 1e-6

    def bfd_downs(self) -> int:
        """BFD Up -> Down transitions of the agent's session to the peer (counter of transitions into Down)."""
        return int(self._metric("bgpnet_bfd_session_state_changes_total", state="Down") or 0)

    def mark(self) -> int:
        return self.bfd_downs()

    def cause(self, mark: object) -> str:
        # The agent tears the session down on a BFD down; a hold timer expiry leaves the BFD counter alone.
        return "bfd" if self.bfd_downs() > mark else "hold"  # type: ignore[operator]


class BirdDetector(Detector):
    name, session, interface, (peer_ip, address) = "bird", "birddet", "tobird", BIRD_LINK

    def __init__(self, group: NetnsGroup, ns: Netns, workdir: Path) -> None:
        self.group, self.ns = group, ns
        self.router = BirdRouter(ns, workdir)
        self.ctl: BirdControl | None = None
        self._downs_before = 0
        super().__init__()

    def start(self, mode: Mode) -> None:
        self.router.start(birddet_config(mode))
        self.ctl = BirdControl(str(self.router.socket))

    def stop(self) -> None:
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        self.router.stop(self.group)

    def _session(self) -> BirdBfdSession | None:
        assert self.ctl is not None
        return bird_bfd_sessions(self.ctl.command("show bfd sessions")).get(self.peer_ip)

    def bfd_ready(self, mode: Mode) -> bool:
        session = self._session()
        return session is not None and session.state == "Up" and session.timeout_s == mode.theory_s

    def last_error(self) -> str:
        """BIRD's `Last error` of its BGP session ('' when none): "BFD session down", "Hold timer expired"..."""
        assert self.ctl is not None
        for line in self.ctl.command("show protocols all peer").splitlines():
            if "Last error:" in line:
                return line.split("Last error:", 1)[1].strip()
        return ""

    def cause(self, mark: object) -> str:
        error = self.last_error()  # e.g. "Error: BFD session down", "Error: Hold timer expired"
        for words, cause in (("BFD session down", "bfd"), ("Hold timer expired", "hold")):
            if words in error:
                return cause
        return error or "unknown"


# --- the bench -------------------------------------------------------------------------------------------------
class Bench:
    """The namespaces, the peer and both detectors, and the measurements on them."""

    def __init__(self, group: NetnsGroup, workdir: Path, feed: int, table: int,
                 detectors: tuple[str, ...] = ("bgpnet", "bird")) -> None:
        self.group, self.workdir, self.feed, self.table = group, workdir, feed, table
        self.cluster = Cluster(group, workdir)  # the agent gets --kubeconfig, as users run `bgpnet agent`
        node = self.cluster.add_node(1, start_agent=False, extra_config=agent_config_changes(MODES["hold"]))
        peer_ns = group.add("peer")
        peer_ns.as_router()
        self.peer = BirdRouter(peer_ns, workdir / "peer")
        self.peer_log = workdir / "peer" / "events.log"
        self.peer_ctl: BirdControl | None = None
        birddet_ns = group.add("birddet")
        birddet_ns.as_router()
        for ns, (peer_ip, own_ip), peer_if in ((node.ns, NODE_LINK, "tonode"), (birddet_ns, BIRD_LINK, "tobird")):
            group.veth(ns, "uplink", peer_ns, peer_if)
            ns.run("ip", "addr", "add", f"{own_ip}/30", "dev", "uplink")
            peer_ns.run("ip", "addr", "add", f"{peer_ip}/30", "dev", peer_if)
        self.bgpnet = BgpnetDetector(self.cluster, node)
        self.bird = BirdDetector(group, birddet_ns, workdir / "birddet")
        self.detectors = tuple(d for d in (self.bgpnet, self.bird) if d.name in detectors)

    # processes of one mode
    def start(self, mode: Mode) -> None:
        self.peer.start(peer_config(mode, self.feed, self.table, self.peer_log))
        self.peer_ctl = BirdControl(str(self.peer.socket))
        for detector in self.detectors:
            detector.start(mode)

    def stop(self) -> None:
        for detector in self.detectors:
            detector.stop()
        if self.peer_ctl is not None:
            self.peer_ctl.close()
            self.peer_ctl = None
        self.peer.stop(self.group)

    def close(self) -> None:
        self.stop()
        for detector in (self.bgpnet, self.bird):
            detector.close()

    def peer_command(self, text: str) -> str:
        assert self.peer_ctl is not None
        return self.peer_ctl.command(text)

    def peer_bfd(self, detector: Detector) -> BirdBfdSession | None:
        """The peer's BFD session towards the detector, as the peer sees it."""
        return bird_bfd_sessions(self.peer_command("show bfd sessions")).get(detector.address)

    # one repetition
    def establish(self, detector: Detector, mode: Mode, learned: int) -> None:
        """Session enabled at the peer; wait for the routes and, with BFD, for both ends Up at the mode's rates."""
        self.peer_command(f"enable {detector.session}")
        detector.events.wait_count(detector.counter, detector.baseline + learned, SESSION_TIMEOUT_S)
        if mode.interval_ms is None:
            return
        interval, detect = mode.interval_ms / 1000, mode.theory_s

        def fast() -> bool:
            seen = self.peer_bfd(detector)
            return (seen is not None and seen.state == "Up" and seen.interval_s == interval
                    and seen.timeout_s == detect and detector.bfd_ready(mode))

        wait_for(fast, SESSION_TIMEOUT_S, 0.05, f"BFD Up at {mode.label} between the peer and {detector.name}")

    def repetition(self, detector: Detector, mode: Mode) -> dict:
        """Establish, black-hole, time the routes' removal, recover, disable (module docstring)."""
        self.establish(detector, mode, self.feed)
        time.sleep(SETTLE_S + mode.jitter_s())
        mark = detector.mark()
        self.peer.ns.run("nft", "-f", "-", input=blackhole_ruleset(detector.interface))
        started = time.monotonic()  # nft has returned: the drop rule is committed
        gone = detector.events.wait_count(detector.counter, detector.baseline, HOLD_S * 3)
        cause = detector.cause(mark)
        self.peer.ns.run("nft", "delete", "table", "inet", BLACKHOLE_TABLE)
        healed = time.monotonic()
        back = detector.events.wait_count(detector.counter, detector.baseline + self.feed, SESSION_TIMEOUT_S)
        self.peer_command(f"disable {detector.session}")
        detector.events.wait_count(detector.counter, detector.baseline, SESSION_TIMEOUT_S)
        return {"detect_s": round(gone - started, 4), "recover_s": round(back - healed, 4), "cause": cause}

    # false downs
    def false_downs(self, mode: Mode, rounds: int) -> dict:
        """The table announced and withdrawn `rounds` times on node1's BFD session (module docstring)."""
        detector = self.bgpnet
        self.establish(detector, mode, self.feed)
        before = self._bfd_snapshot()
        log_offset = self.peer_log.stat().st_size
        with_feed = detector.baseline + self.feed
        announce, withdraw = [], []
        for _ in range(rounds):
            announce.append(self._transfer("enable bulk", detector.counter, with_feed + self.table))
            withdraw.append(self._transfer("disable bulk", detector.counter, with_feed))
        time.sleep(2 * mode.theory_s)  # a late down would still be counted
        after = self._bfd_snapshot()
        with open(self.peer_log, errors="replace") as log:
            log.seek(log_offset)
            peer_downs = bird_bfd_downs(log.read(), detector.address)
        self.peer_command(f"disable {detector.session}")
        detector.events.wait_count(detector.counter, detector.baseline, SESSION_TIMEOUT_S)
        return {"prefixes": self.table, "rounds": rounds, "bfd": mode.label,
                "bgpnet_bfd_downs": after["bgpnet_downs"] - before["bgpnet_downs"], "peer_bfd_downs": peer_downs,
                "peer_bfd_session": {"before": before["peer_session"], "after": after["peer_session"]},
                "peer_bgp_since": {"before": before["peer_since"], "after": after["peer_since"]},
                # BIRD prints the same instant a few µs apart from one reply to the next (its real-time clock is
                # derived from its monotonic one anew): a restart would move it by seconds.
                "bgp_session_kept": abs(before["peer_since"] - after["peer_since"]) < 0.01,
                "announce_s": spread(announce), "withdraw_s": spread(withdraw)}

    def _transfer(self, command: str, counter: FibCounter, target: int) -> float:
        started = time.time()
        self.peer_command(command)
        # BIRD 2.0.12 may idle ~3 s before its last UPDATE (a missed wakeup): `show status` keeps it awake.
        return round(watch_count(counter, target, timeout=SESSION_TIMEOUT_S * 3,
                                 poke=lambda: self.peer_command("show status")).done - started, 4)

    def _bfd_snapshot(self) -> dict:
        """bgpnet's Down counter, the peer's BFD session row and when its BGP session last changed state."""
        session = self.peer_bfd(self.bgpnet)
        return {"bgpnet_downs": self.bgpnet.bfd_downs(), "peer_session": asdict(session) if session else None,
                "peer_since": bird_since(self.peer_command("show protocols node1"), "node1")}


def measure_mode(bench: Bench, mode: Mode, repetitions: int) -> dict:
    """Fresh processes with the mode's timers, then `repetitions` alternating repetitions per detector."""
    bench.start(mode)
    runs: dict[str, list[dict]] = {d.name: [] for d in bench.detectors}
    try:
        for rep in range(repetitions):
            for detector in bench.detectors:
                sample = bench.repetition(detector, mode)
                runs[detector.name].append(sample)
                print(f"  {mode.name} #{rep + 1} {detector.name}: detected in {sample['detect_s'] * 1e3:.0f} ms "
                      f"({sample['cause']}), recovered in {sample['recover_s']:.2f} s", file=sys.stderr, flush=True)
    finally:
        bench.stop()
    return summarize(mode, runs, loadavg())


def summarize(mode: Mode, runs: dict[str, list[dict]], load: str) -> dict:
    """p50/p90 (nearest rank) of detection and recovery per detector, their causes, the ratio of the p50s."""
    row: dict = {"label": mode.label, "interval_ms": mode.interval_ms, "multiplier": mode.multiplier,
                 "theory_s": mode.theory_s, "repetitions": max(len(s) for s in runs.values()), "loadavg": load}
    for name, samples in runs.items():
        detect = [s["detect_s"] for s in samples]
        recover = [s["recover_s"] for s in samples]
        causes: dict[str, int] = {}
        for s in samples:
            causes[s["cause"]] = causes.get(s["cause"], 0) + 1
        row[name] = {"detect_s": {"p50": round(median(detect), 4), "p90": round(percentile(detect, 0.9), 4),
                                  "min": min(detect), "max": max(detect), "all": detect},
                     "recover_s": {"p50": round(median(recover), 4), "p90": round(percentile(recover, 0.9), 4),
                                   "all": recover},
                     "causes": causes}
    both = "bgpnet" in row and "bird" in row
    row["ratio_p50"] = ratio(row["bgpnet"]["detect_s"]["p50"], row["bird"]["detect_s"]["p50"]) if both else None
    return row


def render(modes: dict[str, dict]) -> str:
    rows = []
    for row in modes.values():
        ours, ref = row.get("bgpnet", NOT_RUN), row.get("bird", NOT_RUN)
        rows.append([row["label"], f"{row['theory_s'] * 1e3:.0f}", _ms(ours["detect_s"]["p50"]),
                     _ms(ours["detect_s"]["p90"]), _ms(ref["detect_s"]["p50"]), _ms(ref["detect_s"]["p90"]),
                     f"{row['ratio_p50']:.2f}x" if row["ratio_p50"] else "-",
                     _causes(ours["causes"]), _causes(ref["causes"]),
                     f"{_s(ours['recover_s']['p50'])} / {_s(ref['recover_s']['p50'])}"])
    return format_table(["mode", "theory ms", "bgpnet p50 ms", "p90", "BIRD p50 ms", "p90", "bgpnet/BIRD p50",
                         "bgpnet via", "BIRD via", "recovery p50 s bgpnet / BIRD"], rows)


NOT_RUN: dict = {"detect_s": {"p50": None, "p90": None}, "recover_s": {"p50": None}, "causes": {}}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def _causes(causes: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(causes.items()))


def render_false_downs(result: dict) -> str:
    rows = [["BFD downs, bgpnet (its Down counter)", result["bgpnet_bfd_downs"]],
            ["BFD downs, BIRD peer (its log)", result["peer_bfd_downs"]],
            ["BGP session kept throughout (peer's view)", "yes" if result["bgp_session_kept"] else "NO"],
            ["announce, s, median (min-max)", _figure(result["announce_s"])],
            ["withdraw, s, median (min-max)", _figure(result["withdraw_s"])]]
    return format_table([f"false downs: {result['prefixes']} prefixes announced and withdrawn {result['rounds']} "
                         f"times, {result['bfd']}", "result"], rows)


def _figure(stats: dict) -> str:
    return f"{stats['median']:.3f} ({stats['min']:.3f}-{stats['max']:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repetitions, a 2,000-prefix table (CI smoke)")
    parser.add_argument("--repetitions", type=int, help="repetitions per mode and detector (default 10)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    parser.add_argument("--feed", type=int, default=100, help="prefixes the peer announces (default 100)")
    parser.add_argument("--table", type=int, help="prefixes of the false-down test's table (default 50,000)")
    parser.add_argument("--detectors", default="bgpnet,bird", help="subset of bgpnet,bird (default both)")
    parser.add_argument("--no-false-downs", action="store_true", help="skip the false-down test")
    parser.add_argument("--false-down-mode", default="bfd300", choices=[m for m in MODES if MODES[m].interval_ms],
                        help="BFD timers of the false-down test (default bfd300)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (agent and BIRD logs)")
    parser.add_argument("--output", type=Path, help="also write the JSON document here")
    args = parser.parse_args(argv)
    # A SIGTERM (e.g. a runner's timeout) unwinds like Ctrl-C, so the namespaces and processes are still removed.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(128 + signal.SIGTERM))
    modes = [MODES[name] for name in args.modes.split(",") if name]  # --modes '': the false-down test alone
    repetitions = args.repetitions or (2 if args.quick else 10)
    table = args.table or (2_000 if args.quick else 50_000)
    load_start = loadavg()
    results: dict[str, dict] = {}
    false_downs = None
    with work_directory("bench-bfd-detection-", args.keep) as workdir, NetnsGroup("bgpbfd") as group:
        bench = Bench(group, workdir, args.feed, table, tuple(args.detectors.split(",")))
        try:
            for mode in modes:
                results[mode.name] = measure_mode(bench, mode, repetitions)
            if not args.no_false_downs and "bgpnet" in args.detectors:
                bench.start(MODES[args.false_down_mode])
                false_downs = bench.false_downs(MODES[args.false_down_mode], 3)
        finally:
            bench.close()
    load_end = loadavg()
    if results:
        print(render(results))
    if false_downs:
        print(render_false_downs(false_downs), end="")
    print(f"\nload average (1, 5, 15 min): start {load_start}, end {load_end}; per mode: "
          + ", ".join(f"{name}: {r['loadavg']}" for name, r in results.items()))
    print("detectors one at a time, alternating (bgpnet, BIRD, ...): the idle one's session is disabled at the peer")
    document = {"modes": results, "false_downs": false_downs, "repetitions": repetitions, "feed": args.feed,
                "loadavg": {"start": load_start, "end": load_end}, "hold_time_s": HOLD_S,
                "keepalive_s": KEEPALIVE_S, "clock": "nft drop rule committed -> feed gone from the detector's "
                "kernel (rtnetlink-woken fib_triestat reads, time.monotonic)",
                "alternation": "one detector peers at a time; the other's session is disabled at the peer"}
    emit_json("bfd_detection", document)
    if args.output:
        args.output.write_text(json.dumps({"benchmark": "bfd_detection", **document}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
