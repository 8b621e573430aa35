"""Graceful restart in the speaker: the capability in the ExaBGP config (golden file, accepted by the real
ExaBGP), and the peer's OPEN parsed into its Restart Time."""

import ipaddress
import subprocess
from pathlib import Path

from bgp_encode import graceful_restart_capability, open_body, packet_line

from bgpnet.speaker import exabgp_process
from bgpnet.speaker.events import GracefulRestart, PeerOpen
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


def test_received_open_gives_the_peers_restart_time_or_none():
    # Raw OPENs as ExaBGP 4.2.25 hands them over (`receive { packets; open; }`).
    multiprotocol = bytes([1, 4, 0, 1, 0, 1])
    with_gr = open_body(64512, "10.0.0.3", multiprotocol + graceful_restart_capability(30, flags=8))
    assert parse_line(packet_line("open", "10.0.0.3", with_gr)) == PeerOpen(ip("10.0.0.3"),
                                                                           GracefulRestart(30, True, {}))
    assert parse_line(packet_line("open", "10.0.0.3", open_body(64512, "10.0.0.3", multiprotocol))
                      ) == PeerOpen(ip("10.0.0.3"), None)
    assert parse_line(packet_line("open", "10.0.0.3", with_gr, direction="send")) == Ignored("open")
