"""A connection collision (RFC 4271 §6.8) resolved in favour of the incoming connection must not leave the
peer stuck: driven through ExaBGP's own `Peer.handle_connection` and `Peer.run`, with the network parts faked."""

from types import SimpleNamespace

import pytest

from bgpnet.speaker.exabgp import collision


class FakeConnection:
    def __init__(self, label: str) -> None:
        self.label = label

    def name(self) -> str:
        return self.label

    def notification(self, code, subcode, message):  # what ExaBGP returns to refuse a connection
        yield False


INCOMING = FakeConnection("incoming")


class FakeProtocol:
    """Stands in for exabgp.reactor.protocol.Protocol: records what the peer does with its connections."""

    def __init__(self, peer):
        self.connection = None
        self.closed = None
        self.negotiated = SimpleNamespace(received_open=SimpleNamespace(router_id=SimpleNamespace(
            pack=lambda: bytes([172, 31, 0, 142]))))  # the neighbor's BGP Identifier, higher than ours

    def accept(self, connection):
        self.connection = connection
        return self

    def close(self, reason):
        self.closed = reason


def peer_in(state_name: str, monkeypatch):
    """An ExaBGP Peer whose outgoing connection reached `state_name`, the way Peer._establish leaves it."""
    import exabgp.reactor.peer as peer_module
    from exabgp.bgp.fsm import FSM
    from exabgp.reactor.delay import Delay
    from exabgp.reactor.peer import Peer

    monkeypatch.setattr(peer_module, "Protocol", FakeProtocol)
    peer = Peer.__new__(Peer)
    peer.logger = SimpleNamespace(debug=lambda *a, **k: None)
    peer.neighbor = SimpleNamespace(uid=1, router_id=SimpleNamespace(pack=lambda: bytes([172, 31, 0, 11])),
                                    api={"fsm": False})
    peer.reactor = SimpleNamespace(processes=SimpleNamespace(broken=lambda neighbor: False))
    peer.fsm = FSM(peer, getattr(FSM, state_name))
    peer._delay = Delay()
    peer._restart = True
    outgoing = FakeProtocol(peer)
    outgoing.connection = FakeConnection("outgoing")
    peer.proto = outgoing
    peer.generator = iter(())  # the outgoing connection's session, which handle_connection drops
    started = []

    def new_session():
        started.append(peer.proto.connection)
        yield "session"

    peer._run = new_session
    return peer, outgoing, started


@pytest.fixture
def patched(monkeypatch):
    from exabgp.reactor.peer import Peer

    monkeypatch.setattr(Peer, "handle_connection", Peer.handle_connection)  # ExaBGP's back afterwards
    collision.apply()


def test_exabgp_alone_never_runs_the_accepted_connection_after_openconfirm(monkeypatch):
    peer, outgoing, started = peer_in("OPENCONFIRM", monkeypatch)
    assert peer.handle_connection(INCOMING) is None  # accepted: the neighbor's identifier is higher
    assert outgoing.closed and peer.proto.connection is INCOMING
    for _ in range(3):
        peer.run()
    assert started == [] and peer.generator is False  # "stopping, other connection is established": wedged


def test_the_accepted_connection_gets_its_session_after_openconfirm(patched, monkeypatch):
    from exabgp.bgp.fsm import FSM

    peer, outgoing, started = peer_in("OPENCONFIRM", monkeypatch)
    assert peer.handle_connection(INCOMING) is None
    assert outgoing.closed and peer.fsm == FSM.ACTIVE
    peer.run(), peer.run()  # ExaBGP's reactor: one pass makes the session, the next runs it
    assert started == [INCOMING]


@pytest.mark.parametrize("state", ["IDLE", "ACTIVE", "CONNECT", "OPENSENT"])
def test_other_states_are_left_as_exabgp_leaves_them(patched, monkeypatch, state):
    from exabgp.bgp.fsm import FSM

    peer, _, started = peer_in(state, monkeypatch)
    assert peer.handle_connection(INCOMING) is None
    assert peer.fsm == getattr(FSM, state)
    peer.run(), peer.run()
    assert started == [INCOMING]


def test_a_refused_incoming_connection_keeps_the_outgoing_session(patched, monkeypatch):
    from exabgp.bgp.fsm import FSM

    peer, outgoing, _ = peer_in("OPENCONFIRM", monkeypatch)
    # Our identifier higher than the neighbor's: §6.8 keeps our connection and refuses theirs.
    peer.neighbor.router_id = SimpleNamespace(pack=lambda: bytes([172, 31, 0, 200]))
    assert peer.handle_connection(INCOMING) is not None
    assert outgoing.closed is None and peer.proto is outgoing and peer.fsm == FSM.OPENCONFIRM
