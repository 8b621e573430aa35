"""The agent's Node events, written through the real kubernetes client to the API stand-in."""

from __future__ import annotations

from kubernetes import client

from bgpnet import node_events
from bgpnet.kube.events import NAMESPACE, NodeEventRecorder, NodeEventWriter


def node_events_listed(api, node="node1"):
    return sorted((e.reason, e.count, e.type, e.message) for e in
                   api.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={node}").items)


def test_repeats_update_one_event_and_distinct_ones_are_separate(api):
    clock = iter(range(1000, 2000, 10)).__next__
    recorder = NodeEventRecorder(NodeEventWriter(api.api_client, "node1"), clock=lambda: float(clock()))
    down = node_events.session_down("172.31.0.12", 64512, "hold timer expired")
    for event in (down, down, node_events.session_up("172.31.0.12", 64512), down):
        recorder.emit(event)
    recorder.drain()
    assert node_events_listed(api) == [
        ("BGPSessionDown", 3, "Warning", "BGP session with 172.31.0.12 (AS 64512) went down: hold timer expired"),
        ("BGPSessionUp", 1, "Normal", "BGP session with 172.31.0.12 (AS 64512) is Established")]
    event = api.list_namespaced_event(NAMESPACE, field_selector="reason=BGPSessionDown").items[0]
    assert (event.involved_object.kind, event.source.component, event.source.host) == ("Node", "bgpnet", "node1")
    assert event.last_timestamp > event.first_timestamp
    assert (recorder.written, recorder.failed) == (4, 0)


def test_an_expired_event_is_created_again(api, standin):
    recorder = NodeEventRecorder(NodeEventWriter(api.api_client, "node1"))
    event = node_events.config_error("peers[0].asn: must be an integer AS number")
    recorder.emit(event)
    recorder.drain()
    (name,) = [e.metadata.name for e in api.list_namespaced_event(NAMESPACE).items]
    api.delete_namespaced_event(name, NAMESPACE)  # the API server's event TTL
    recorder.emit(event)
    recorder.emit(event)
    recorder.drain()
    assert recorder.failed == 1
    assert node_events_listed(api) == [("BGPConfigError", 1, "Warning",
                                        "bgpnet configuration error: peers[0].asn: must be an integer AS number")]


def test_an_absent_api_server_is_counted_never_raised(standin):
    cfg = client.Configuration()
    cfg.host = standin.url
    standin.stop()
    cfg.retries = False
    with client.ApiClient(cfg) as api_client:
        recorder = NodeEventRecorder(NodeEventWriter(api_client, "node1"))
        recorder.emit(node_events.session_up("172.31.0.12", 64512))
        recorder.drain()
    assert (recorder.written, recorder.failed) == (0, 1)
