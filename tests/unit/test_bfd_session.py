"""BFD control packets and the session state machine (RFC 5880), two sessions talking through packets on a
simulated clock (pure)."""

from __future__ import annotations

import pytest

from bgpnet.bfd import packet as p
from bgpnet.bfd.packet import ADMIN_DOWN, DOWN, INIT, UP, BadPacket, ControlPacket, decode
from bgpnet.bfd.session import SLOW_TX_US, Session


def pair(tx_a=300_000, rx_a=300_000, tx_b=300_000, rx_b=300_000, mult=3):
    return (Session(1, tx_a, rx_a, mult, now=0.0), Session(2, tx_b, rx_b, mult, now=0.0))


def send(src: Session, dst: Session, now: float):
    return dst.receive(decode(src.packet().encode()), now)


def bring_up(a: Session, b: Session, now: float = 0.0) -> None:
    send(a, b, now)       # b: Down -> Init
    send(b, a, now)       # a: Down -> Up (remote Init)
    send(a, b, now)       # b: Init -> Up
    send(b, a, now)       # b polls its fast rate; a answers Final next
    send(a, b, now)
    send(b, a, now)
    send(a, b, now)


def test_round_trip_of_every_field():
    pkt = ControlPacket(state=UP, my_discriminator=7, your_discriminator=9, desired_min_tx_us=300_000,
                        required_min_rx_us=200_000, detect_mult=3, diag=p.DIAG_NEIGHBOR_DOWN, poll=True)
    data = pkt.encode()
    assert len(data) == 24 and data[0] == (1 << 5) | 3 and data[1] == (UP << 6) | 0x20
    assert decode(data) == pkt


@pytest.mark.parametrize(("mutate", "why"), [
    (lambda d: d[:20], "shorter"),
    (lambda d: bytes([(2 << 5)]) + d[1:], "version 2"),
    (lambda d: d[:1] + bytes([d[1] | 0x04]) + d[2:], "authentication"),
    (lambda d: d[:2] + b"\x00" + d[3:], "detect multiplier 0"),
    (lambda d: d[:1] + bytes([d[1] | 0x01]) + d[2:], "multipoint"),
    (lambda d: d[:4] + b"\x00\x00\x00\x00" + d[8:], "my discriminator 0"),
    (lambda d: d[:3] + bytes([40]) + d[4:], "length field 40"),
    (lambda d: d[:1] + bytes([d[1] | 0x30]) + d[2:], "poll and final"),
])
def test_reception_checks_discard(mutate, why):
    good = ControlPacket(state=UP, my_discriminator=1, your_discriminator=2, desired_min_tx_us=1,
                         required_min_rx_us=1, detect_mult=3).encode()
    with pytest.raises(BadPacket, match=why):
        decode(mutate(good))


def test_your_discriminator_zero_is_only_valid_while_down():
    up_without_yours = ControlPacket(state=UP, my_discriminator=1, your_discriminator=0, desired_min_tx_us=1,
                                     required_min_rx_us=1, detect_mult=3).encode()
    with pytest.raises(BadPacket, match="your discriminator 0 in state Up"):
        decode(up_without_yours)


def test_three_way_handshake_then_fast_timers_after_a_poll():
    a, b = pair()
    assert a.packet().desired_min_tx_us == SLOW_TX_US  # not Up: at least one second (§6.8.3)
    assert send(a, b, 0.0).new == INIT
    assert send(b, a, 0.0).new == UP
    assert a.poll_pending and a.packet().poll  # announcing 300 ms now that it is Up
    assert send(a, b, 0.0).new == UP
    bring_up(a, b)
    assert not a.poll_pending and not b.poll_pending
    assert (a.tx_interval_s(), a.detection_time_s()) == (0.3, 0.9)


def test_timeout_declares_down_with_detection_expired_and_forgets_the_peer():
    a, b = pair()
    bring_up(a, b)
    assert a.expire(0.89) is None
    change = a.expire(0.9)
    assert (change.old, change.new, change.diag) == (UP, DOWN, p.DIAG_DETECTION_EXPIRED)
    assert a.remote_discriminator == 0
    assert a.packet().desired_min_tx_us == SLOW_TX_US


def test_the_peer_going_down_or_admin_down_brings_us_down():
    a, b = pair()
    bring_up(a, b)
    b.admin(True)
    change = send(b, a, 1.0)
    assert (change.new, change.diag) == (DOWN, p.DIAG_NEIGHBOR_DOWN)
    a2, b2 = pair()
    bring_up(a2, b2)
    b2.expire(10.0)  # b2 timed a2 out: it says Down
    assert send(b2, a2, 10.0).new == DOWN


def test_negotiated_intervals_use_the_slower_side():
    a, b = pair(tx_a=100_000, rx_a=100_000, tx_b=300_000, rx_b=500_000, mult=3)
    bring_up(a, b)
    assert a.tx_interval_s() == 0.5       # b will not receive faster than 500 ms
    assert a.detection_time_s() == 0.9   # b sends every 300 ms, times b's multiplier 3
    assert b.tx_interval_s() == 0.3
    assert b.detection_time_s() == 1.5   # a sends every max(100, 500) ms


def test_a_timer_change_while_up_is_polled_and_a_slower_rate_waits_for_final():
    a, b = pair()
    bring_up(a, b)
    a.set_timers(1_000_000, 300_000)
    assert a.poll_pending and a.tx_interval_s() == 0.3  # slower only after the Final
    send(a, b, 1.0)
    assert b.wants_immediate_send()
    reply = b.packet()
    assert reply.final and not b.wants_immediate_send()
    a.receive(decode(reply.encode()), 1.0)
    assert not a.poll_pending and a.tx_interval_s() == 1.0


def test_a_longer_receive_interval_protects_us_at_once():
    a, b = pair()
    bring_up(a, b)
    a.set_timers(300_000, 1_000_000)
    assert a.detection_time_s() == 3.0


def test_a_packet_for_another_session_is_ignored():
    a, b = pair()
    bring_up(a, b)
    stray = ControlPacket(state=DOWN, my_discriminator=99, your_discriminator=12345, desired_min_tx_us=1,
                          required_min_rx_us=1, detect_mult=3)
    assert a.receive(stray, 1.0) is None and a.state == UP


def test_admin_down_session_ignores_the_peer_and_says_so():
    a = Session(1, 300_000, 300_000, 3, now=0.0, admin_down=True)
    b = Session(2, 300_000, 300_000, 3, now=0.0)
    assert send(b, a, 0.0) is None and a.state == ADMIN_DOWN
    assert a.packet().diag == p.DIAG_ADMIN_DOWN
    assert a.admin(False).new == DOWN
