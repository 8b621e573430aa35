"""The agent's HTTP endpoints on a real socket (127.0.0.1, ephemeral port), fed by a swappable snapshot."""

import dataclasses
import json
import urllib.error
import urllib.request

import pytest
from snapshot_samples import full_snapshot

from bgpnet.http_server import parse_address, serve
from bgpnet.metrics import make_registry
from bgpnet.snapshot import AgentSnapshot, LoopStatus


@pytest.fixture
def agent_server():
    current = {"snapshot": full_snapshot()}

    def snapshot():
        return current["snapshot"]

    server = serve("127.0.0.1:0", snapshot, make_registry(snapshot, process=False))
    try:
        yield server, current
    finally:
        server.close()


def get(server, path, accept=None):
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}",
                                     headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_metrics_in_text_and_openmetrics_formats(agent_server):
    server, _ = agent_server
    code, ctype, body = get(server, "/metrics")
    assert code == 200 and ctype.startswith("text/plain") and "bgpnet_bgp_session_up{" in body
    code, ctype, body = get(server, "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert code == 200 and ctype.startswith("application/openmetrics-text") and body.endswith("# EOF\n")


def test_healthz_follows_the_loops(agent_server):
    server, current = agent_server
    assert get(server, "/healthz")[::2] == (200, "ok\n")
    wedged = (LoopStatus("reconcile", alive=True, age_s=100.0, stall_after_s=90.0),)
    current["snapshot"] = dataclasses.replace(current["snapshot"], loops=wedged)
    code, _, body = get(server, "/healthz")
    assert code == 503 and body == "loop reconcile made no progress for 100s (limit 90s)\n"


def test_readyz_follows_route_programming(agent_server):
    server, current = agent_server
    assert get(server, "/readyz")[::2] == (200, "ok\n")
    current["snapshot"] = dataclasses.replace(current["snapshot"], routes_programmed=False)
    code, _, body = get(server, "/readyz")
    assert code == 503 and body == "routes not programmed yet\n"


def test_status_is_the_snapshot_as_json_with_the_health_verdicts(agent_server):
    server, current = agent_server
    code, ctype, body = get(server, "/status")
    doc = json.loads(body)
    assert code == 200 and ctype == "application/json"
    assert AgentSnapshot.from_dict(doc) == current["snapshot"]
    assert doc["health"] == {"live": True, "live_problems": [], "ready": True, "ready_problems": []}


def test_unknown_paths_and_failing_snapshots_answer_with_errors(agent_server):
    server, current = agent_server
    assert get(server, "/nope")[0] == 404

    def broken():
        raise RuntimeError("lock poisoned")

    server.snapshot = broken
    code, _, body = get(server, "/healthz")
    assert code == 500 and "lock poisoned" in body


@pytest.mark.parametrize(("text", "expected"), [
    ("0.0.0.0:9179", ("0.0.0.0", 9179)),
    ("127.0.0.1", ("127.0.0.1", 9179)),
    (":9000", ("0.0.0.0", 9000)),
    ("[::]:9179", ("::", 9179)),
    ("[fd00::1]", ("fd00::1", 9179)),
    ("fd00::1", ("fd00::1", 9179)),
])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["host:port", "1.2.3.4:70000", "[::1", "[::1]x"])
def test_parse_address_rejects(text):
    with pytest.raises(ValueError, match="invalid"):
        parse_address(text)


def test_a_taken_port_is_an_error():
    server = serve("127.0.0.1:0", full_snapshot, make_registry(full_snapshot, process=False))
    try:
        with pytest.raises(OSError):
            serve(f"127.0.0.1:{server.port}", full_snapshot, make_registry(full_snapshot, process=False))
    finally:
        server.close()
