"""`bgpnet status --all-nodes`: gathering every agent's /status and rendering them (pure, fetch injected)."""

from __future__ import annotations

import json

from bgpnet import cluster_status
from bgpnet.http_server import status_document
from bgpnet.snapshot import AgentSnapshot, PeerStatus, RouteSyncStatus


def document(node: str, *peers: PeerStatus, installed: int = 0, errors: tuple[str, ...] = ()) -> dict:
    snapshot = AgentSnapshot(node=node, version="0.1.0", taken_at=1000.0, started_at=0.0, own_node_known=True,
                             routes_programmed=True, announced=("10.244.1.0/24",), peers=peers,
                             routes=RouteSyncStatus(installed={"ipv4": installed}), last_errors=errors)
    return json.loads(json.dumps(status_document(snapshot)))


def test_every_node_is_asked_at_its_internal_ip_and_a_silent_one_is_listed_with_why():
    answers = {"172.31.0.11:9179": document("node1", PeerStatus("172.31.0.12", 64512, state="established",
                                                                since=880.0, prefixes_accepted=1), installed=1)}

    def fetch(address: str) -> dict:
        if address not in answers:
            raise OSError(f"connection refused by {address}")
        return answers[address]

    agents = cluster_status.gather([("node1", "172.31.0.11"), ("node2", "172.31.0.12"), ("node3", None)],
                                   fetch, 9179)
    assert [(a.node, a.address, a.document is not None) for a in agents] == [
        ("node1", "172.31.0.11:9179", True), ("node2", "172.31.0.12:9179", False), ("node3", None, False)]
    assert agents[1].error == "connection refused by 172.31.0.12:9179"
    assert agents[2].error == "the Node has no InternalIP"


def test_ipv6_addresses_are_bracketed():
    agents = cluster_status.gather([("n1", "fd00::11")], lambda address: {"address": address}, 9179)
    assert agents[0].address == "[fd00::11]:9179"


def test_the_table_shows_nodes_then_sessions_with_state_and_age():
    agents = [
        cluster_status.NodeAgent("node1", "172.31.0.11:9179", document(
            "node1", PeerStatus("172.31.0.12", 64512, state="established", since=880.0, prefixes_accepted=1,
                                prefixes_advertised=1), installed=1)),
        cluster_status.NodeAgent("node2", "172.31.0.12:9179", error="timed out"),
    ]
    text = cluster_status.render(agents)
    lines = text.splitlines()
    assert lines[0] == "2 nodes, 1 agents answered"
    assert lines[2].split() == ["NODE", "AGENT", "READY", "SESSIONS", "ROUTES", "IN", "OUT", "LAST", "ERROR", "/",
                                "NOT", "READY"]
    assert lines[3].split() == ["node1", "answering", "yes", "1/1", "1", "1"]
    assert lines[4].split() == ["node2", "NO", "ANSWER", "-", "-", "-", "-", "timed", "out"]
    assert lines[7].split() == ["node1", "172.31.0.12", "64512", "Established", "2m", "1", "1"]


def test_json_carries_each_agents_own_document_or_the_error():
    doc = document("node1")
    data = cluster_status.to_json([cluster_status.NodeAgent("node1", "a:1", doc),
                                   cluster_status.NodeAgent("node2", "b:1", error="refused")])
    assert data["nodes"][0] == {"node": "node1", "address": "a:1", "answered": True, "error": None, "status": doc}
    assert data["nodes"][1]["answered"] is False and data["nodes"][1]["error"] == "refused"
    json.dumps(data)


def test_the_command_lists_nodes_through_the_api_and_asks_each_agent(standin, tmp_path, capsys):
    from bgpnet import cli
    from bgpnet.http_server import serve
    from bgpnet.metrics import make_registry
    from integration.kube_api import make_node

    def snapshot():
        return AgentSnapshot(node="node1", version="0.1.0", taken_at=1000.0, started_at=0.0, own_node_known=True,
                             routes_programmed=True, peers=(PeerStatus("172.31.0.12", 64512, state="established",
                                                                       since=940.0),))

    standin.create_node(make_node("node1", ["127.0.0.1"], ["10.244.1.0/24"]))
    standin.create_node(make_node("node2", [], ["10.244.2.0/24"]))
    kubeconfig = standin.write_kubeconfig(str(tmp_path / "kubeconfig"))
    server = serve("127.0.0.1:0", snapshot, make_registry(snapshot, process=False))
    try:
        argv = ["status", "--all-nodes", "--kubeconfig", kubeconfig, "--port", str(server.port)]
        assert cli.main(argv) == 1  # node2's agent cannot be asked
        text = capsys.readouterr().out
        assert cli.main([*argv, "--json"]) == 1
        data = json.loads(capsys.readouterr().out)
    finally:
        server.close()
    assert text.startswith("2 nodes, 1 agents answered")
    assert "node1  answering" in text and "node2  NO ANSWER" in text
    assert "node1  172.31.0.12  64512  Established  1m" in text
    assert [(n["node"], n["answered"]) for n in data["nodes"]] == [("node1", True), ("node2", False)]


def test_a_missing_kubeconfig_is_one_line_and_exit_2(tmp_path, capsys):
    from bgpnet import cli

    assert cli.main(["status", "--all-nodes", "--kubeconfig", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bgpnet status: cannot load Kubernetes credentials from "
                                                  f"{tmp_path / 'nope'}")


def test_a_down_session_shows_why_and_an_established_one_does_not():
    agents = [cluster_status.NodeAgent("node1", "a:1", document(
        "node1", PeerStatus("172.31.0.12", 64512, state="down", since=990.0, last_down_reason="hold timer expired"),
        PeerStatus("172.31.0.13", 64512, state="established", since=990.0, last_down_reason="old news")))]
    text = cluster_status.render(agents)
    assert "Down         10s   0    0  hold timer expired" in text and "old news" not in text
