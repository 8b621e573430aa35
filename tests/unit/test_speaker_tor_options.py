"""ToR session options in the ExaBGP config (MD5, multihop TTL) and communities on announcements."""

import ipaddress
import subprocess
from pathlib import Path

from bgp_encode import packet_line, update

from bgpnet.model import Announcement, BgpPeer, Md5Password
from bgpnet.prefix import Prefix
from bgpnet.speaker import exabgp_process
from bgpnet.speaker.commands import announce, desired_per_peer, diff_commands
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env
from bgpnet.speaker.parser import RoutesReceived, parse_line

DATA = Path(__file__).parent / "data" / "exabgp"
ip, net = ipaddress.ip_address, ipaddress.ip_network
RELAY = ["/usr/bin/python3", "-S", "/opt/relay.py", "/run/b/api.sock"]
TOR = BgpPeer(ip("172.19.1.1"), 65101, ip("172.20.1.2"), 65001, md5=Md5Password('p a;s"s{}'), ttl=2)


def test_tor_peer_renders_golden_md5_base64_and_outgoing_ttl():
    text = render_config(ip("172.20.1.2"), [TOR], RELAY)
    assert text == (DATA / "golden_tor_peer.conf").read_text()
    assert 'p a;s"s{}' not in text  # written base64-encoded: no key character can break the tokeniser


def test_real_exabgp_accepts_md5_and_ttl(tmp_path):
    files = RunFiles(tmp_path)
    files.config.write_text(render_config(ip("172.20.1.2"), [TOR], exabgp_process.relay_argv(files)))
    files.env.write_text(render_env(files, listen=True))
    argv = [*exabgp_process.default_exabgp_argv(), "--env", str(files.env), "--validate", str(files.config)]
    ok = subprocess.run(argv, capture_output=True, text=True, env=exabgp_process.child_environment(), timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_md5_password_never_shows_in_repr_or_str():
    assert "p a;s" not in repr(TOR) and "p a;s" not in str(TOR.md5)
    assert TOR.md5 == Md5Password('p a;s"s{}') and TOR.md5 != Md5Password("other")


def test_announcement_carries_standard_and_large_communities():
    a = Announcement(net("10.244.1.0/24"), ("64512:100", "64512:201"), ("64512:1:1",))
    assert announce(ip("172.19.1.1"), a) == ("neighbor 172.19.1.1 announce route 10.244.1.0/24 next-hop self "
                                             "community [ 64512:100 64512:201 ] large-community [ 64512:1:1 ]")


def test_changed_communities_reannounce_without_a_withdraw():
    held = desired_per_peer([TOR], [Announcement(net("10.244.1.0/24"), ("64512:100",))])
    desired = desired_per_peer([TOR], [Announcement(net("10.244.1.0/24"), ("64512:200",))])
    assert diff_commands(held, desired) == [
        "neighbor 172.19.1.1 announce route 10.244.1.0/24 next-hop self community [ 64512:200 ]"]


def test_ipv6_global_next_hop_is_kept_over_the_link_local_one():
    # A BIRD update carrying a global and a link-local next hop (RFC 2545), raw as ExaBGP 4.2 hands it over.
    body = update(path=[(2, [65100, 65002])], mp_reach=("fd00:20:1::1,fe80::1", ["fd10:244:0:2::/64"]))
    parsed = parse_line(packet_line("update", "fd00:20:1::1", body))
    assert isinstance(parsed, RoutesReceived)
    assert [(r.prefix, r.next_hop) for r in parsed.announced] == [(Prefix.parse("fd10:244:0:2::/64"),
                                                                    ip("fd00:20:1::1"))]
