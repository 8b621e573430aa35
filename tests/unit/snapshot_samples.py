"""A representative agent snapshot for the observability unit tests (every section filled in)."""

from bgpnet.snapshot import (
    AgentSnapshot,
    BfdProcessStatus,
    BfdStatus,
    DurationHistogram,
    IpamPool,
    KubeStatus,
    LoopStatus,
    PeerStatus,
    RouteSyncStatus,
    SpeakerStatus,
)

NOW = 1_700_000_000.0


def histogram(*values: float):
    h = DurationHistogram()
    for v in values:
        h.observe(v)
    return h.snapshot()


def full_snapshot(**overrides) -> AgentSnapshot:
    peers = (
        PeerStatus(address="172.31.0.12", asn=64512, description="node2", state="established", since=NOW - 125,
                   state_changes={"established": 2, "down": 1}, updates_received=3, prefixes_received=4,
                   withdrawals_received=1, prefixes_accepted=1, prefixes_advertised=1,
                   rejected={"own-pod-cidr": 2}, malformed={"treat-as-withdraw": 2, "session-reset": 1}),
        PeerStatus(address="172.31.0.13", asn=64513, description="node3", state="down", since=NOW - 7,
                   state_changes={"established": 1, "down": 1}, last_down_reason="connection closed"),
    )
    values = dict(
        node="node1", version="0.1.0", taken_at=NOW, started_at=NOW - 3725, own_node_known=True,
        routes_programmed=True, announced=("10.244.1.0/24",), peers=peers,
        routes=RouteSyncStatus(installed={"ipv4": 1, "ipv6": 0}, stale=0,
                               durations={"apply": histogram(0.0002, 0.003, 0.7), "resync": histogram(0.02)},
                               errors={"conflict": 1}, changes={"add": 3, "replace": 1, "delete": 2},
                               last_sync_time=NOW - 2, last_sync_errors=0, last_duration_s=0.0004),
        kube=KubeStatus(reachable=True, nodes=3, bad_nodes=0,
                        events={"ADDED": 3, "MODIFIED": 10, "BOOKMARK": 2, "WEIRD": 1},
                        relists=1, watches=2, api_errors=0, last_sync_time=NOW - 1),
        speaker=SpeakerStatus(running=True, pid=4242, restarts=1, bad_messages=0, command_errors=0),
        ipam=(IpamPool("10.244.1.0/24", 2, 254),),
        loops=(LoopStatus("reconcile", alive=True, age_s=1.5, stall_after_s=90.0),
               LoopStatus("node-source", alive=True)),
        reconciles=17, reconcile_failures=0, last_errors=("route error: add 10.244.2.0/24: conflict (File exists)",),
        bfd=(BfdStatus("172.31.0.12", "Up", configured_detect_ms=900.0, negotiated_detect_ms=900.0, tx_ms=300.0,
                       state_changes={"Init": 1, "Up": 1}),
             BfdStatus("172.31.0.14", "Down", diag=1, configured_detect_ms=900.0, negotiated_detect_ms=1500.0,
                       tx_ms=1000.0, state_changes={"Init": 1, "Up": 1, "Down": 1}, holding_bgp_down=True)),
        bfd_process=BfdProcessStatus(running=True, pid=4343, restarts=0),
    )
    values.update(overrides)
    return AgentSnapshot(**values)
