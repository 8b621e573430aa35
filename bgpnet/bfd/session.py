"""One BFD session (RFC 5880 §6.2, §6.8): the state machine, the negotiated timers and the Poll sequence
(pure: every input carries `now`, monotonic seconds; the caller sends what `packet()` returns).

    AdminDown --(enable)--> Down --(remote Down)--> Init --(remote Init/Up)--> Up
    Down --(remote Init)--> Up        Init|Up --(remote AdminDown, remote Down [Up only], timeout)--> Down

Timers (§6.8.2–§6.8.4): this system transmits every max(its DesiredMinTx, the peer's RequiredMinRx), jittered
to 75–100 % (at most 90 % with a detect multiplier of 1, §6.8.7); the peer is declared down when nothing
arrived for the Detection Time = the peer's DetectMult × max(our RequiredMinRx, the peer's DesiredMinTx).
While the session is not Up, DesiredMinTx is at least one second (§6.8.3). A change of either interval while
Up — including the switch to the configured fast rate when the session comes Up — is announced with a Poll
sequence and takes effect when the peer answers with Final, so neither side times the other out on rates it
has not agreed to yet (§6.8.3). Demand mode, echo and authentication are not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from bgpnet.bfd.packet import (
    ADMIN_DOWN,
    DIAG_ADMIN_DOWN,
    DIAG_DETECTION_EXPIRED,
    DIAG_NEIGHBOR_DOWN,
    DIAG_NONE,
    DOWN,
    INIT,
    UP,
    ControlPacket,
)

SLOW_TX_US = 1_000_000  # §6.8.3: DesiredMinTx while not Up


@dataclass(frozen=True)
class Change:
    """A state transition, with the diagnostic that explains a transition down."""

    old: int
    new: int
    diag: int


class Session:
    def __init__(self, local_discriminator: int, desired_min_tx_us: int, required_min_rx_us: int,
                 detect_mult: int, *, now: float, admin_down: bool = False) -> None:
        self.local_discriminator = local_discriminator
        self.remote_discriminator = 0
        self.state = ADMIN_DOWN if admin_down else DOWN
        self.remote_state = DOWN
        self.diag = DIAG_ADMIN_DOWN if admin_down else DIAG_NONE
        self.detect_mult = detect_mult
        self.configured_tx_us, self.configured_rx_us = desired_min_tx_us, required_min_rx_us
        # The intervals in force (what the peer has acknowledged) and the ones being announced by a Poll.
        self.tx_us, self.rx_us = SLOW_TX_US, required_min_rx_us
        self._announced_tx_us, self._announced_rx_us = SLOW_TX_US, required_min_rx_us
        self.remote_min_rx_us = 1  # §6.8.1 initial value
        self.remote_desired_tx_us = 0
        self.remote_detect_mult = 0
        self.poll_pending = False
        self._send_final = False
        self.last_rx = now

    # -- timers -------------------------------------------------------------------------------------------
    def tx_interval_s(self) -> float:
        """Seconds between two packets before jitter (§6.8.7); 0: must not send (peer's RequiredMinRx is 0)."""
        if self.remote_min_rx_us == 0:
            return 0.0
        return max(self.tx_us, self.remote_min_rx_us) / 1e6

    def max_jitter_fraction(self) -> float:
        """The packet interval is reduced by up to 25 %, or 10 % with a detect multiplier of 1 (§6.8.7)."""
        return 0.10 if self.detect_mult == 1 else 0.25

    def detection_time_s(self) -> float:
        return self.remote_detect_mult * max(self.rx_us, self.remote_desired_tx_us) / 1e6

    def detection_deadline(self) -> float | None:
        """When the peer is declared down if nothing arrives (None: no session to time out)."""
        if self.state not in (INIT, UP) or self.remote_detect_mult == 0:
            return None
        return self.last_rx + self.detection_time_s()

    # -- events -------------------------------------------------------------------------------------------
    def receive(self, packet: ControlPacket, now: float) -> Change | None:
        """§6.8.6 for a packet that passed `decode` and belongs to this session."""
        if packet.your_discriminator and packet.your_discriminator != self.local_discriminator:
            return None
        if packet.final and self.poll_pending:
            self.poll_pending = False
            self.tx_us, self.rx_us = self._announced_tx_us, self._announced_rx_us
        self.remote_discriminator = packet.my_discriminator
        self.remote_state = packet.state
        self.remote_min_rx_us = packet.required_min_rx_us
        self.remote_desired_tx_us = packet.desired_min_tx_us
        self.remote_detect_mult = packet.detect_mult
        self.last_rx = now
        if packet.poll:
            self._send_final = True
        if self.state == ADMIN_DOWN:
            return None
        old = self.state
        if packet.state == ADMIN_DOWN:
            if self.state != DOWN:
                return self._to(DOWN, DIAG_NEIGHBOR_DOWN, old)
            return None
        if self.state == DOWN:
            if packet.state == DOWN:
                return self._to(INIT, DIAG_NONE, old)
            if packet.state == INIT:
                return self._to(UP, DIAG_NONE, old)
        elif self.state == INIT:
            if packet.state in (INIT, UP):
                return self._to(UP, DIAG_NONE, old)
        elif packet.state == DOWN:  # Up
            return self._to(DOWN, DIAG_NEIGHBOR_DOWN, old)
        return None

    def expire(self, now: float) -> Change | None:
        """The Detection Time passed without a packet (§6.8.4): Down, and forget the peer's discriminator."""
        deadline = self.detection_deadline()
        if deadline is None or now < deadline:
            return None
        self.remote_discriminator = 0
        return self._to(DOWN, DIAG_DETECTION_EXPIRED, self.state)

    def set_timers(self, desired_min_tx_us: int, required_min_rx_us: int) -> None:
        """New configured intervals: announced with a Poll while Up, in force at once otherwise."""
        self.configured_tx_us, self.configured_rx_us = desired_min_tx_us, required_min_rx_us
        self._announce()

    def admin(self, down: bool) -> Change | None:
        old = self.state
        if down and self.state != ADMIN_DOWN:
            return self._to(ADMIN_DOWN, DIAG_ADMIN_DOWN, old)
        if not down and self.state == ADMIN_DOWN:
            return self._to(DOWN, DIAG_NONE, old)
        return None

    def packet(self) -> ControlPacket:
        """The next Control packet to send (§6.8.7); a pending Final goes out once."""
        final, self._send_final = self._send_final, False
        return ControlPacket(state=self.state, my_discriminator=self.local_discriminator,
                             your_discriminator=self.remote_discriminator,
                             desired_min_tx_us=self._announced_tx_us, required_min_rx_us=self._announced_rx_us,
                             detect_mult=self.detect_mult, diag=self.diag, poll=self.poll_pending and not final,
                             final=final)

    def wants_immediate_send(self) -> bool:
        """A Final is owed to the peer's Poll: send now, not at the next interval (§6.8.6)."""
        return self._send_final

    # -- internals ----------------------------------------------------------------------------------------
    def _to(self, new: int, diag: int, old: int) -> Change:
        self.state, self.diag = new, diag
        self._announce()
        return Change(old, new, diag)

    def _announce(self) -> None:
        """Work out the intervals to advertise now; start a Poll when they change while Up (§6.8.3)."""
        tx = self.configured_tx_us if self.state == UP else max(self.configured_tx_us, SLOW_TX_US)
        rx = self.configured_rx_us
        if (tx, rx) == (self._announced_tx_us, self._announced_rx_us):
            return
        self._announced_tx_us, self._announced_rx_us = tx, rx
        if self.state == UP:
            # Until the Final: a faster transmit rate and a longer detection time are safe at once, a slower
            # rate and a shorter detection time only once the peer has seen them (§6.8.3).
            self.tx_us, self.rx_us = min(self.tx_us, tx), max(self.rx_us, rx)
            self.poll_pending = True
        else:
            self.poll_pending = False
            self.tx_us, self.rx_us = tx, rx
