"""The rack the hostile-peer tests attack: two nodes behind a BIRD2 ToR, plus a rogue router on node1.

node1 and node2 (eBGP, AS 65001 and 65002) peer with one BIRD ToR (AS 65100) over their eth0 links, as in
test_faults_tor. node1 has a second link (eth1, 172.21.1.0/24) to the "rogue" namespace and a per-node peer
(`bgpnet.io/peers`) for it: AS 64666, passive on node1's side, so node1's ExaBGP only ever accepts the rogue's
connections and each test decides when a session starts. No BGP daemon runs in the rogue namespace: the
tests' raw speaker (hostile_speaker) connects from there.

node1's agent serves its HTTP endpoints (/metrics, /healthz, /status) on 127.0.0.1:9179 inside its namespace;
the tests read them with a socket created in that namespace.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bgpnet.lab.netns import NetnsGroup, entered
from bgpnet.lab.processes import descendants
from tests.privileged.hostile_messages import UPDATE, announce, frame
from tests.privileged.hostile_speaker import RawSession, SessionError
from tests.privileged.tor_topology import (
    CLUSTER_CIDRS,
    VENV_BIN,
    LabNode,
    Router,
    TorLab,
    bird_common,
    bird_neighbor,
    link_addresses,
    wait_for,
)

CONFIG = {"asn": 64512, "clusterCIDRs": CLUSTER_CIDRS, "nodeToNodeMesh": False, "routeSyncPeriod": 3,
          "startupGracePeriod": 5}
TOR_ASN = 65100
ROGUE_ASN = 64666
NODE_ASNS = {1: 65001, 2: 65002}
ROGUE_IP, NODE1_LINK_IP = link_addresses(1, 1)[:2]  # 172.21.1.1 (rogue), 172.21.1.2 (node1's eth1)
ROGUE_ROUTER_ID = "10.254.0.9"
HTTP_ADDRESS = ("127.0.0.1", 9179)
NODE2_CIDR = "10.244.2.0/24"
PROBE_PREFIX = "10.244.99.0/24"


@dataclass
class HostileLab:
    lab: TorLab
    node1: LabNode
    node2: LabNode
    tor: Router
    rogue: Router

    # --- the node's own view -------------------------------------------------------------------------------
    def http(self, path: str) -> tuple[int, str]:
        """GET `path` from node1's agent (the connection's socket is created inside node1's namespace)."""
        with entered(self.node1.ns.path):
            conn = http.client.HTTPConnection(*HTTP_ADDRESS, timeout=5)
            conn.connect()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def status(self) -> dict:
        code, text = self.http("/status")
        assert code == 200, text
        return json.loads(text)

    def healthz(self) -> int:
        return self.http("/healthz")[0]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
        _, text = self.http("/metrics")
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def malformed_count(self, action: str | None = None) -> float:
        """bgpnet_bgp_malformed_updates_total for the rogue (one action, or all of them)."""
        labels = {"peer": ROGUE_IP} | ({"action": action} if action else {})
        return self.metric("bgpnet_bgp_malformed_updates_total", **labels)

    def rogue_peer_state(self) -> str:
        for peer in self.status().get("peers", []):
            if peer["address"] == ROGUE_IP:
                return peer["state"]
        return "absent"

    def agent_pid(self) -> int:
        assert self.node1.agent is not None and self.node1.agent.poll() is None, self.lab.agent_log(self.node1)[-3000:]
        return self.node1.agent.pid

    def exabgp_pid(self) -> int:
        pid = self.status()["speaker"]["pid"]
        assert pid, "node1's agent reports no ExaBGP process"
        return int(pid)

    # --- kernel routes ----------------------------------------------------------------------------------
    def routes(self) -> dict[str, str]:
        return self.node1.routes()

    def rogue_routes(self) -> set[str]:
        """node1's bgpnet routes through the rogue (alone or as one of several ECMP next hops)."""
        return {prefix for prefix, text in self.routes().items() if f"via {ROGUE_IP} " in text + " "}

    def count_rogue_routes(self) -> int:
        """Cheap for tens of thousands: one `ip route` listing filtered by gateway."""
        out = self.node1.ns.run("ip", "-4", "route", "show", "proto", "179", "via", ROGUE_IP, timeout=60).stdout
        return sum(1 for line in out.splitlines() if line.strip())

    def fib_prefixes(self) -> int:
        """Prefixes in node1's FIB trie, read from /proc/<agent PID>/net (which shows the agent's namespace):
        no route dump, so it can be polled while tens of thousands of routes come and go."""
        text = Path(f"/proc/{self.agent_pid()}/net/fib_triestat").read_text()
        main = text.split("Main:", 1)[1]
        return int(main.split("Prefixes:", 1)[1].split()[0])

    def node2_route_intact(self) -> bool:
        """node2's pod CIDR in node1's kernel through the ToR only (172.20.1.1), as before any test."""
        text = self.routes().get(NODE2_CIDR, "")
        return f"via {link_addresses(1, 0)[0]} " in text + " " and ROGUE_IP not in text

    # --- the rogue's sessions ---------------------------------------------------------------------------
    def session(self) -> RawSession:
        return RawSession(self.rogue.ns.path, ROGUE_IP, NODE1_LINK_IP)

    def established_session(self, timeout: float = 30, hold: int = 9) -> RawSession:
        """A fresh Established session; retried while node1's ExaBGP is still winding the previous one down."""
        errors: list[str] = []

        def attempt() -> RawSession | None:
            session = self.session()
            try:
                return session.connect(timeout=2).establish(ROGUE_ASN, ROGUE_ROUTER_ID, hold=hold, timeout=5)
            except (OSError, SessionError) as exc:
                session.close()
                errors.append(str(exc))
                return None

        try:
            return wait_for(attempt, timeout, interval=0.2, what="an Established session from the rogue")  # type: ignore[return-value]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; attempts: {errors[-3:]}") from None

    def probe(self, prefix: str = PROBE_PREFIX) -> str | None:
        """None when a clean rogue session still gets a route into node1's kernel (and takes it away again),
        else what went wrong."""
        try:
            with self.established_session(timeout=10) as session:
                session.send(frame(UPDATE, announce([prefix], ROGUE_ASN, ROGUE_IP)))
                wait_for(lambda: prefix in self.rogue_routes(), 5, what=f"probe route {prefix}")
            self.wait_rogue_gone(10)
        except (AssertionError, OSError) as exc:
            return str(exc)
        return None

    def restart_agent(self) -> None:
        """Stop node1's agent and whatever ExaBGP it left (by PID), start a fresh one, wait until it works."""
        agent = self.node1.agent
        assert agent is not None
        children = descendants(agent.pid)
        self.lab.group.stop_process(agent, timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        start_agent_with_http(self.lab, self.node1)
        wait_for(lambda: self.lab.check_agents() or (_healthy(self) and self.node2_route_intact()), 60,
                 what="node1's new agent healthy with node2's route")
        self.wait_rogue_gone(30)

    def wait_rogue_gone(self, timeout: float = 20) -> None:
        """No route through the rogue and no Established rogue session left on node1."""
        wait_for(lambda: not self.rogue_routes() and self.rogue_peer_state() != "established", timeout,
                 interval=0.05, what="the rogue's session down and its routes gone")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for PID {pid}")


def start_agent_with_http(lab: TorLab, node: LabNode) -> None:
    """TorLab.start_agent's command line with the HTTP endpoints on (it runs agents with none)."""
    log = open(node.workdir / "agent.log", "a")
    node.agent = node.ns.spawn(
        [str(VENV_BIN / "bgpnet"), "agent", "--config", str(node.workdir / "config.yaml"),
         "--node-name", node.name, "--kubeconfig", str(lab.kubeconfig), "--run-dir",
         str(node.workdir / "run"), "--cni-conf-dir", str(node.workdir / "net.d"),
         "--rt-protos-dir", str(lab.workdir / "rt_protos.d"), "--log-level", "debug",
         "--metrics-address", ":".join(map(str, HTTP_ADDRESS))],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()


def build(group: NetnsGroup, workdir: Path) -> HostileLab:
    lab = TorLab(group, workdir, CONFIG)
    tor = lab.add_router("tor", 1)
    lab.start_bird(tor, bird_common(tor) + "".join(
        bird_neighbor(f"n{i}", TOR_ASN, link_addresses(i, 0)[1], asn) for i, asn in NODE_ASNS.items()))
    peers = [{"address": link_addresses(1, 0)[0], "asn": TOR_ASN},
             {"address": ROGUE_IP, "asn": ROGUE_ASN, "passive": True}]
    node1 = lab.add_node(1, [tor], labels={"bgpnet.io/asn": str(NODE_ASNS[1])},
                         annotations={"bgpnet.io/peers": json.dumps(peers)}, start=False)
    # The rogue's link exists before node1's agent starts: the agent picks its local address towards each peer
    # from the kernel's routes, and ExaBGP matches an incoming connection by that address.
    rogue = lab.add_router("rogue", 9)
    lab.group.veth(node1.ns, "eth1", rogue.ns, "n1")
    rogue.ns.run("ip", "addr", "add", f"{ROGUE_IP}/24", "dev", "n1")
    node1.ns.run("ip", "addr", "add", f"{NODE1_LINK_IP}/24", "dev", "eth1")
    lab.register(node1)
    start_agent_with_http(lab, node1)
    node2 = lab.add_node(2, [tor], labels={"bgpnet.io/asn": str(NODE_ASNS[2])},
                         annotations={"bgpnet.io/peers": json.dumps([{"address": link_addresses(2, 0)[0],
                                                                      "asn": TOR_ASN}])})
    hostile = HostileLab(lab, node1, node2, tor, rogue)
    wait_for(lambda: lab.check_agents() or (hostile.node2_route_intact() and "10.244.1.0/24" in node2.routes()),
             60, what="pod routes via the ToR")
    wait_for(lambda: _healthy(hostile), 30, what="node1's /healthz")
    return hostile


def _healthy(hostile: HostileLab) -> bool:
    try:
        return hostile.healthz() == 200
    except OSError:
        return False
