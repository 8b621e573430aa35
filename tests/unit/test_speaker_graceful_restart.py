"""Graceful restart in the speaker: the capability in the ExaBGP config (golden file, accepted by the real
ExaBGP), and the peer's OPEN parsed into its Restart Time."""

import ipaddress
import json
import subprocess
from pathlib import Path

from bgpnet.speaker import exabgp_process
from bgpnet.speaker.events import PeerOpen
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env
from bgpnet.speaker.parser import Ignored, parse_line
from tests.unit.test_speaker_config import PEERS, RELAY

DATA = Path(__file__).parent / "data" / "exabgp"
ip = ipaddress.ip_address


def test_capability_golden_file():
    assert render_config(ip("10.0.0.1"), PEERS[1:], RELAY, 30) == (DATA / "golden_graceful_restart.conf").read_text()
    assert "graceful-restart" not in render_config(ip("10.0.0.1"), PEERS, RELAY)


def test_real_exabgp_accepts_the_capability_and_open_messages(tmp_path):
    files = RunFiles(tmp_path)
    files.config.write_text(render_config(ip("10.0.0.1"), PEERS, exabgp_process.relay_argv(files), 120))
    files.env.write_text(render_env(files, listen=True))
    argv = [*exabgp_process.default_exabgp_argv(), "--env", str(files.env), "--validate", str(files.config)]
    ok = subprocess.run(argv, capture_output=True, text=True, env=exabgp_process.child_environment(), timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def open_line(direction, capabilities):
    # The shape ExaBGP 4.2.25's JSON encoder writes (reactor/api/response/json.py `open`, capability json()).
    return json.dumps({
        "exabgp": "4.0.1", "time": 1.0, "host": "h", "pid": 1, "ppid": 1, "counter": 3, "type": "open",
        "neighbor": {"address": {"local": "10.0.0.1", "peer": "10.0.0.3"}, "asn": {"local": 64512, "peer": 64512},
                     "direction": direction,
                     "open": {"version": 4, "asn": 64512, "hold_time": 9, "router_id": "10.0.0.3",
                              "capabilities": capabilities}}})


GR = {"name": "graceful restart", "time": 30, "address-family-flags": {"ipv4/unicast": ["restart"]},
      "restart-flags": ["forwarding"]}


def test_received_open_gives_the_peers_restart_time_or_none():
    caps = {"1": {"name": "multiprotocol", "families": ["ipv4/unicast"]}, "64": GR}
    assert parse_line(open_line("receive", caps)) == PeerOpen(ip("10.0.0.3"), 30)
    assert parse_line(open_line("receive", {"1": {"name": "multiprotocol"}})) == PeerOpen(ip("10.0.0.3"), None)
    assert parse_line(open_line("send", caps)) == Ignored("open")
