"""ExaBGP config and env rendering: exact text (golden file) and acceptance by the real ExaBGP parser."""

import ipaddress
import subprocess
from pathlib import Path

import pytest

from bgpnet.model import BgpPeer
from bgpnet.speaker import exabgp_process
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env

DATA = Path(__file__).parent / "data" / "exabgp"
ip = ipaddress.ip_address
RELAY = ["/usr/bin/python3", "-S", "/opt/relay.py", "/run/b/api.sock"]
PEERS = [
    BgpPeer(ip("2001:db8::2"), 65001, ip("2001:db8::1"), 64512, hold_time=30, description="tor v6"),
    BgpPeer(ip("10.0.0.3"), 64512, ip("10.0.0.1"), 64512, passive=True, port=1179, description='node-3 "x"'),
]


def test_config_matches_golden_file_sorted_by_address_one_family_per_peer():
    assert render_config(ip("10.0.0.1"), PEERS, RELAY) == (DATA / "golden_two_peers.conf").read_text()


def test_config_is_independent_of_peer_order():
    assert render_config(ip("10.0.0.1"), PEERS, RELAY) == render_config(ip("10.0.0.1"), PEERS[::-1], RELAY)


def test_config_without_peers_has_only_the_process():
    assert render_config(ip("10.0.0.1"), [], RELAY) == (
        "process bgpnet {\n    run /usr/bin/python3 -S /opt/relay.py /run/b/api.sock;\n    encoder json;\n}\n")


@pytest.mark.parametrize("bad", ["/path with space/relay.py", "/x;rm", ""])
def test_process_argument_that_would_break_the_tokeniser_is_refused(bad):
    with pytest.raises(ValueError, match="cannot be written"):
        render_config(ip("10.0.0.1"), [], ["/usr/bin/python3", bad])


def test_peer_and_local_address_of_different_versions_are_refused():
    with pytest.raises(ValueError, match="differ in IP version"):
        render_config(ip("10.0.0.1"), [BgpPeer(ip("2001:db8::2"), 1, ip("10.0.0.1"), 2)], RELAY)


def test_env_runs_as_root_without_cli_and_listens_on_wildcards(tmp_path):
    files = RunFiles(tmp_path)
    text = render_env(files, listen=True)
    for line in ("user = 'root'", "cli = false", "ack = true", "bind = '0.0.0.0 ::'", "port = 179",
                 f"pid = '{tmp_path}/exabgp.pid'", "respawn = true", "destination = 'stdout'"):
        assert line in text.splitlines()
    assert "bind = ''" in render_env(files, listen=False).splitlines()


def test_real_exabgp_accepts_the_rendered_config_and_env(tmp_path):
    files = RunFiles(tmp_path)
    files.config.write_text(render_config(ip("10.0.0.1"), PEERS, exabgp_process.relay_argv(files)))
    files.env.write_text(render_env(files, listen=True))
    argv = [*exabgp_process.default_exabgp_argv(), "--env", str(files.env), "--validate", str(files.config)]
    ok = subprocess.run(argv, capture_output=True, text=True, env=exabgp_process.child_environment(), timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2001:db8::2" in ok.stdout

    files.config.write_text(files.config.read_text().replace("peer-as 65001", "peer-as sixty"))
    bad = subprocess.run(argv, capture_output=True, text=True, env=exabgp_process.child_environment(), timeout=60)
    assert bad.returncode != 0
    assert "invalid ASN" in bad.stdout
