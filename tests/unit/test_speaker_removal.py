"""A removed passive neighbor leaves ExaBGP's table (bgpnet.speaker.exabgp.removal), driven through ExaBGP's own
`Reactor.active_peers`, `Peer.remove` and `Peer.run` with the network parts faked."""

from types import SimpleNamespace

import pytest

from bgpnet.speaker.exabgp import removal


def reactor_with(peers):
    from exabgp.reactor.loop import Reactor

    reactor = Reactor.__new__(Reactor)
    reactor._peers = peers
    return reactor


def passive_peer():
    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.delay import Delay
    from exabgp.reactor.peer import Peer

    peer = Peer.__new__(Peer)
    peer.neighbor = SimpleNamespace(passive=True, api={"fsm": False}, uid=1,
                                    rib=SimpleNamespace(uncache=lambda: None))
    peer.logger = SimpleNamespace(debug=lambda *a, **k: None)
    peer.reactor = SimpleNamespace(processes=SimpleNamespace(broken=lambda neighbor: False))
    peer.fsm = FSM(peer, FSM.ACTIVE)
    peer._delay = Delay()
    peer._restart = True
    peer.proto = None
    peer.generator = None
    peer.stats = {"creation": 0}
    return peer


@pytest.fixture
def restored(monkeypatch):
    from exabgp.reactor.loop import Reactor

    monkeypatch.setattr(Reactor, "active_peers", Reactor.active_peers)


def test_exabgp_itself_never_runs_a_removed_passive_peer(restored):
    waiting, removed = passive_peer(), passive_peer()
    removed.remove()
    assert reactor_with({"waiting": waiting, "removed": removed}).active_peers() == set()


def test_patched_it_runs_it_once_and_the_peer_closes(restored):
    from exabgp.reactor.peer import ACTION

    removal.apply()
    removal.apply()  # idempotent
    waiting, removed = passive_peer(), passive_peer()
    removed.remove()
    assert reactor_with({"waiting": waiting, "removed": removed}).active_peers() == {"removed"}
    assert removed.run() == ACTION.CLOSE  # what makes the reactor delete it from its table
    assert removal.stopped_for_good(removed) and not removal.stopped_for_good(waiting)
