"""`bgpnet status`: rendering of a snapshot (pure) and the command against a served agent."""

import json
import socket

import pytest
from snapshot_samples import NOW, full_snapshot

from bgpnet import cli
from bgpnet.http_server import serve as serve_http
from bgpnet.http_server import status_document
from bgpnet.metrics import make_registry
from bgpnet.snapshot import AgentSnapshot, PeerStatus
from bgpnet.status_client import status_url
from bgpnet.status_view import duration, peers_table, render, table

EXPECTED_PEERS = """\
PEER           ASN  STATE                     SINCE     BFD  IN  OUT  REJECTED  MALFORMED            DESCRIPTION
172.31.0.12  64512  Established               2m5s ago  Up    1    1         2  1 reset, 2 withdraw  node2
172.31.0.13  64513  Down (connection closed)  7s ago    -     0    0         0  0                    node3"""

EXPECTED_BFD = """\
BFD process: pid 4343, 0 restarts
BFD PEER     STATE  DETECT  CONFIGURED      TX  DOWNS  LAST DIAG               BGP
172.31.0.12  Up      900ms       900ms   300ms      0  -                       -
172.31.0.14  Down   1500ms       900ms  1000ms      1  detection time expired  held down until BFD is Up"""


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (60, "1m"), (3725, "1h2m"),
                                               (90061, "1d1h"), (-5, "0s")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_peers_table_like_birdc_show_protocols():
    assert peers_table(full_snapshot()) == EXPECTED_PEERS


def test_table_pads_to_the_widest_cell_and_right_aligns_numbers():
    assert table(("A", "N"), [("x", 1), ("long", 100)], right=frozenset({1})) == "A       N\nx       1\nlong  100"


def test_full_status_text():
    snap = full_snapshot()
    text = render(snap, status_document(snap)["health"])
    lines = text.splitlines()
    assert lines[0] == "bgpnet 0.1.0 on node node1: ready, up 1h2m"
    assert "Speaker: ExaBGP pid 4242, 1 restarts, 0 API channel restarts" in lines
    assert "Kubernetes API: reachable, 3 nodes, last sync 1s ago, 1 re-lists, 0 errors" in lines
    assert EXPECTED_PEERS in text
    assert EXPECTED_BFD in text
    assert "Announced: 10.244.1.0/24" in lines
    assert "Installed routes: 1 (IPv4 1, IPv6 0); last sync 2s ago took 0.4 ms, 0 errors" in lines
    assert "IPAM: 10.244.1.0/24 2/254 in use" in lines
    assert lines[-2:] == ["Last errors (oldest first):",
                          "  route error: add 10.244.2.0/24: conflict (File exists)"]


def test_not_ready_shows_the_reasons():
    snap = full_snapshot(own_node_known=False, peers=(), last_errors=())
    text = render(snap, status_document(snap)["health"])
    assert text.startswith("bgpnet 0.1.0 on node node1: NOT READY, up 1h2m\n  not ready: own Node node1 not listed")
    assert "No BGP peers configured." in text and text.endswith("Last errors: none\n")


def test_snapshot_json_round_trip_and_tolerance():
    snap = full_snapshot()
    assert AgentSnapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap
    partial = AgentSnapshot.from_dict({"node": "n", "version": "9", "taken_at": NOW, "started_at": NOW,
                                       "peers": [{"address": "10.0.0.1", "asn": 1, "future_field": 1}],
                                       "another_future_field": {}})
    assert partial.peers == (PeerStatus(address="10.0.0.1", asn=1),)


@pytest.mark.parametrize(("address", "url"), [("0.0.0.0:9179", "http://127.0.0.1:9179/status"),
                                              ("[::]:9179", "http://[::1]:9179/status"),
                                              ("10.0.0.5:9000", "http://10.0.0.5:9000/status")])
def test_status_url(address, url):
    assert status_url(address) == url


@pytest.fixture
def served():
    snap = full_snapshot()
    server = serve_http("127.0.0.1:0", lambda: snap, make_registry(lambda: snap, process=False))
    try:
        yield server
    finally:
        server.close()


def test_status_command_prints_the_table(served, capsys):
    assert cli.main(["status", "--address", f"127.0.0.1:{served.port}"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bgpnet 0.1.0 on node node1: ready") and EXPECTED_PEERS in out


def test_status_command_json(served, capsys):
    assert cli.main(["status", "--json", "--address", f"127.0.0.1:{served.port}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["peers"][0]["address"] == "172.31.0.12" and doc["health"]["ready"] is True


def test_status_command_without_an_agent_fails_with_a_message(capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli.main(["status", "--address", f"127.0.0.1:{port}", "--timeout", "2"]) == 1
    assert f"no bgpnet agent answered at http://127.0.0.1:{port}/status" in capsys.readouterr().err
