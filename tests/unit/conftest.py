"""Fixtures shared by the unit tests."""

import pytest

from bgpnet.speaker import exabgp as exabgp_compat
from integration.kube_api import KubeApiStandIn


@pytest.fixture
def standin():
    """A Kubernetes API stand-in on 127.0.0.1 with short bookmark timers, stopped after the test."""
    s = KubeApiStandIn(bookmark_interval=0.2, bookmark_before_timeout=0.1).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def api_client(standin):
    """The real kubernetes client's ApiClient talking to the stand-in (wrap it in any *Api class)."""
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = standin.url
    with client.ApiClient(cfg) as api_client:
        yield api_client


@pytest.fixture
def make_api(standin):
    """A new ApiClient to the stand-in per call (own connection pool, no retries): one per competing agent."""
    from kubernetes import client

    clients = []

    def make():
        cfg = client.Configuration()
        cfg.host = standin.url
        cfg.retries = False
        clients.append(client.ApiClient(cfg))
        return clients[-1]

    yield make
    for made in clients:
        made.close()


@pytest.fixture
def api(api_client):
    """The real kubernetes client's CoreV1Api talking to the stand-in."""
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture
def patched(monkeypatch):
    """Every ExaBGP patch applied for one test; everything they replace is put back afterwards."""
    import exabgp.logger
    import exabgp.reactor.api.response.json as json_response
    from exabgp.bgp.message.update import Update
    from exabgp.bgp.message.update.attribute.mprnlri import MPRNLRI
    from exabgp.bgp.message.update.attribute.mpurnlri import MPURNLRI
    from exabgp.configuration.setup import environment
    from exabgp.reactor.delay import Delay
    from exabgp.reactor.loop import Reactor
    from exabgp.reactor.peer import Peer

    environment.setup("")  # what ExaBGP's own tools do before decoding (idempotent)
    monkeypatch.setattr(exabgp.logger.Logger, "debug", exabgp.logger.Logger.debug)
    monkeypatch.setattr(json_response, "hexstring", json_response.hexstring)
    monkeypatch.setattr(Delay, "increase", Delay.increase)
    monkeypatch.setattr(Peer, "handle_connection", Peer.handle_connection)
    monkeypatch.setattr(Reactor, "active_peers", Reactor.active_peers)
    original = Update.__dict__["unpack_message"]
    monkeypatch.setattr(MPRNLRI, "unpack", MPRNLRI.__dict__["unpack"])
    monkeypatch.setattr(MPURNLRI, "unpack", MPURNLRI.__dict__["unpack"])
    exabgp_compat.forget_applied()
    exabgp_compat.apply_all()
    yield
    Update.unpack_message = original
    exabgp_compat.forget_applied()
