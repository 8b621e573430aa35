"""The speaker: ExaBGP as a supervised subprocess, driven through its process API.

Threads and what they own:
- supervisor: writes the config, spawns ExaBGP, waits for it, restarts it with backoff when it dies;
- reader: accepts the relay's connection, reads ExaBGP's output pipe it hands over (see api_channel) and
  turns every line into events (the only caller of `on_event`
  besides the supervisor, and both go through one lock, so the callback is never re-entered);
- writer (per connection, see api_channel): sends queued commands.

State handed to ExaBGP is the whole desired set: `set()` applies only the difference (announcements as
API commands, peer changes as an atomic config rewrite + SIGUSR1), and every fresh ExaBGP gets everything
again. What ExaBGP cannot give back is what it learned: after a restart it replays nothing, so the
speaker emits `SpeakerRestarted` and the new sessions carry the peers' full tables again. A relay that dies
while ExaBGP lives would leave received routes unreplayable too, so that case restarts ExaBGP as well —
ExaBGP 4.2.25 cannot be asked safely for a route refresh instead: receiving a ROUTE-REFRESH with enhanced
route refresh negotiated resets its session (upstream issues #708/#1237), so the capability stays off.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

from bgpnet.atomic_file import write_atomically
from bgpnet.model import Announcement, BgpPeer, IPAddress, IPNetwork
from bgpnet.snapshot import LoopStatus
from bgpnet.speaker import api_channel, exabgp_process
from bgpnet.speaker.commands import (
    announce,
    as_announcements,
    desired_per_peer,
    diff_commands,
    next_hops,
    validate_peers,
)
from bgpnet.speaker.events import (
    BadMessage,
    EndOfRib,
    PeerUp,
    RoutesReceived,
    SessionReset,
    SpeakerEvent,
    SpeakerRestarted,
)
from bgpnet.speaker.exabgp_config import RunFiles, render_config, render_env
from bgpnet.speaker.parser import Ack, Ignored, RelayHello, StateChange, parse_line
from bgpnet.speaker.reloads import ReloadBook
from bgpnet.speaker.sessions import SessionState, SessionTable

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# A process that ran this long counts as healthy: the next failure starts the backoff again.
HEALTHY_AFTER = 30.0
# ExaBGP starts its API helper within a second; a helper that has not handed over ExaBGP's pipes by then never
# will (e.g. it could not reach the socket): ExaBGP is restarted, since without its pipes we learn nothing.
HANDOFF_DEADLINE = 10.0
# How long the speaker may go without a working channel to a running ExaBGP before /healthz reports it:
# a few restart attempts with backoff. A restart of the agent (the kubelet's answer) starts from scratch.
CHANNEL_STALL_AFTER = 60.0
# RFC 7606 session reset through ExaBGP: Cease, subcode 4 "Administrative Reset" (ExaBGP's `teardown` command
# sends a Cease; the UPDATE Message Error it would send itself cannot be asked for through its API).
TEARDOWN_SUBCODE = 4


class Speaker:
    def __init__(self, run_dir: Path, router_id: IPv4Address, on_event: Callable[[SpeakerEvent], None], *,
                 listen: bool = True, exabgp_argv: Sequence[str] | None = None, graceful_restart: int = 0) -> None:
        self._files = RunFiles(Path(run_dir))
        self._router_id = router_id
        self._on_event = on_event
        self._listen = listen
        self._graceful_restart = graceful_restart
        self._argv = list(exabgp_argv) if exabgp_argv else exabgp_process.default_exabgp_argv()

        self._lock = threading.RLock()
        self._emit_lock = threading.Lock()
        self._stopping = threading.Event()
        self._peers: frozenset[BgpPeer] = frozenset()
        self._announcements: frozenset[Announcement] = frozenset()
        self._sessions = SessionTable()

        # What the running ExaBGP knows, guarded by _lock.
        self._proc: subprocess.Popen | None = None
        self._config_peers: frozenset[BgpPeer] = frozenset()    # peers the running ExaBGP should have
        self._loaded_peers: frozenset[BgpPeer] = frozenset()    # peers it last read (started or reloaded with)
        self._conn: api_channel.Connection | None = None
        self._conn_proc: subprocess.Popen | None = None        # the ExaBGP whose relay is connected
        self._present: set[IPAddress] = set()                   # neighbors known to exist inside ExaBGP
        self._reloads = ReloadBook()                            # when to reload ExaBGP (see reloads.py)
        self._reload_timer: threading.Timer | None = None       # the next time _reloads wants to be asked
        self._held: dict[IPAddress, frozenset[Announcement]] = {}  # announcements sent per neighbor

        self._server = None
        self._threads: list[threading.Thread] = []
        self._connection_done = threading.Event()
        self._connection_done.set()
        self.bad_messages = 0
        self.command_errors = 0
        self.restarts = 0
        self.channel_restarts = 0   # ExaBGP restarted because its helper never handed its pipes over
        self.handler_errors = 0     # lines whose handling raised (a bug; logged, the reader goes on)
        self._channel_since: float | None = time.monotonic()  # since when no channel works (None: one does)

    # ------------------------------------------------------------------ public interface

    def start(self) -> None:
        """Render the config, spawn ExaBGP, start the reader and supervisor threads."""
        self._files.run_dir.mkdir(parents=True, exist_ok=True)
        self._files.env.write_text(render_env(self._files, listen=self._listen))
        self._server = api_channel.listen(self._files.socket)
        for name, target in (("speaker-reader", self._read_loop), ("speaker-supervisor", self._supervise)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def set(self, peers: Collection[BgpPeer], announcements: Collection[Announcement | IPNetwork]) -> None:
        """Make ExaBGP run exactly these sessions and announce exactly these prefixes (next hop self)."""
        validate_peers(peers)
        peers = frozenset(peers)
        announcements = as_announcements(announcements)
        with self._lock:
            self._peers, self._announcements = peers, announcements
            self._sessions.configure(peers, time.time())
            if peers != self._config_peers:
                self._change_peers(peers)
            self._send_diff()

    def stop(self) -> None:
        """Stop ExaBGP (by PID), join the threads, remove the socket.

        With graceful restart on, ExaBGP is killed (SIGKILL): its TCP connections just close, which peers take
        for a restart (RFC 4724) and keep our routes for our Restart Time. SIGTERM would make ExaBGP send a
        Cease NOTIFICATION, which ends graceful restart: BIRD (and any RFC 4724 helper) would withdraw this
        node's routes at once, exactly what a rolling update must not do. Without graceful restart the
        NOTIFICATION is the polite goodbye."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and self._graceful_restart:
            exabgp_process.kill(proc)
        elif proc is not None:
            exabgp_process.terminate(proc)
        if self._server is not None:
            try:
                self._server.shutdown(2)
            except OSError:
                pass
            self._server.close()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            if self._reload_timer is not None:
                self._reload_timer.cancel()
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads.clear()
        try:
            self._files.socket.unlink()
        except FileNotFoundError:
            pass

    def sessions(self) -> Mapping[IPAddress, SessionState]:
        with self._lock:
            return self._sessions.snapshot()

    @property
    def pid(self) -> int | None:
        """PID of the running ExaBGP (for tests and `bgpnet status`)."""
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def loops(self) -> tuple[LoopStatus, ...]:
        """The reader and supervisor threads, and the channel to ExaBGP as a loop of its own: it is wedged
        when no ExaBGP has handed its pipes over for CHANNEL_STALL_AFTER seconds (liveness then fails)."""
        with self._lock:
            since = self._channel_since
        by_name = {t.name: t.is_alive() for t in self._threads}
        stopping = self._stopping.is_set()
        return tuple(
            [LoopStatus(name, alive=stopping or alive) for name, alive in sorted(by_name.items())]
            + [LoopStatus("speaker-channel", alive=True,
                          age_s=0.0 if since is None or stopping else time.monotonic() - since,
                          stall_after_s=CHANNEL_STALL_AFTER)])

    # ------------------------------------------------------------------ applying desired state (under _lock)

    def _write_config(self, peers: frozenset[BgpPeer]) -> None:
        """Write ExaBGP's config with these neighbors (read at the next spawn or reload)."""
        text = render_config(self._router_id, peers, exabgp_process.relay_argv(self._files),
                             self._graceful_restart)
        # The file may hold MD5 keys: readable by root only. Atomic: ExaBGP reading on SIGUSR1 sees the old or
        # the new file, never half of one.
        write_atomically(self._files.config, text, mode=0o600)

    def _change_peers(self, peers: frozenset[BgpPeer]) -> None:
        old, self._config_peers = self._config_peers, peers
        # A changed or removed neighbor loses its routes inside ExaBGP (and the agent drops what it learned
        # from it); it is fed again once the reload that brings it back has settled.
        removed = {p.address for p in old - peers}
        for address in removed:
            self._present.discard(address)
            self._held.pop(address, None)
        self._reloads.removed_from_config(removed)
        if self._conn is not None and self._proc is not None:
            self._apply_reloads()
        else:
            self._write_config(peers)  # for the next ExaBGP

    def _apply_reloads(self) -> None:
        """Do what the reload book decides now, and ask it again when it wants. Under _lock."""
        decision = self._reloads.decide(time.monotonic(), self._config_peers, self._loaded_peers)
        if decision.load is not None and self._proc is not None:
            self._write_config(decision.load)
            exabgp_process.reload(self._proc)
            self._loaded_peers = decision.load
        if decision.present is not None:
            self._present |= decision.present
            self._send_diff()
        if self._reload_timer is not None:
            self._reload_timer.cancel()
            self._reload_timer = None
        if decision.wake_in is not None:
            timer = threading.Timer(decision.wake_in, self._reload_tick)
            timer.daemon = True
            timer.name = "speaker-reload"
            self._reload_timer = timer
            timer.start()

    def _reload_tick(self) -> None:
        with self._lock:
            if not self._stopping.is_set() and self._conn is not None:
                self._apply_reloads()

    def _send_diff(self) -> None:
        if self._conn is None:
            return
        present = [p for p in self._peers if p.address in self._present]
        desired = desired_per_peer(present, self._announcements)
        commands = diff_commands(self._held, desired, next_hops(present))
        self._held.update(desired)
        self._conn.send(commands)

    def _announce_all_to(self, peer: IPAddress) -> None:
        """Re-announce the whole desired set to one neighbor. ExaBGP ignores an announcement it already
        holds for that neighbor, so this is a no-op unless it had lost them (e.g. a neighbor re-created by
        a reload)."""
        if self._conn is None:
            return
        chosen = [p for p in self._peers if p.address == peer]
        desired = desired_per_peer(chosen, self._announcements)
        explicit = next_hops(chosen).get(peer, {})
        held = self._held.get(peer, frozenset())
        want = desired.get(peer, frozenset())
        self._conn.send(diff_commands({peer: held}, {peer: want}, {peer: explicit}) +
                        [announce(peer, a, explicit.get(a.prefix.version))
                         for a in sorted(held & want, key=lambda a: str(a.prefix))])
        self._held[peer] = want

    # ------------------------------------------------------------------ supervisor thread

    def _supervise(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self._write_config(self._config_peers)  # a fresh ExaBGP starts with every desired neighbor
                self._loaded_peers = self._config_peers
                self._reloads = ReloadBook()
                proc = exabgp_process.spawn(self._argv, self._files)
                self._proc = proc
            started = time.monotonic()
            self._emit(SpeakerRestarted())
            code = self._wait_handed_over(proc)
            if self._stopping.is_set():
                return
            log.warning("ExaBGP pid %d exited with %s; last log lines:\n%s", proc.pid, code,
                        exabgp_process.log_tail(self._files))
            # The reader sees EOF on ExaBGP's output pipe; wait for it to drain every line the dead ExaBGP
            # wrote, so nothing stale is delivered after the events below.
            if not self._connection_done.wait(timeout=5):
                with self._lock:
                    if self._conn is not None:
                        self._conn.close()
                self._connection_done.wait(timeout=5)
            with self._lock:
                self._proc = None
                down = self._sessions.all_down(f"ExaBGP exited ({code})", time.time())
            for event in down:
                self._emit(event)
            if time.monotonic() - started >= HEALTHY_AFTER:
                backoff = BACKOFF_FIRST
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            self.restarts += 1

    def _wait_handed_over(self, proc: subprocess.Popen) -> int:
        """Wait for ExaBGP to exit; restart it (by PID) when its helper has not handed the pipes over within
        HANDOFF_DEADLINE: an ExaBGP we cannot hear would keep sessions up while we learn nothing."""
        try:
            return proc.wait(timeout=HANDOFF_DEADLINE)
        except subprocess.TimeoutExpired:
            pass
        with self._lock:
            handed_over = self._conn_proc is proc
        if not handed_over and not self._stopping.is_set():
            log.warning("ExaBGP pid %d: its API helper did not hand over the pipes within %.0fs; restarting it",
                        proc.pid, HANDOFF_DEADLINE)
            self.channel_restarts += 1
            exabgp_process.terminate(proc)
        return proc.wait()

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            try:
                conn = api_channel.Connection(sock)
            except OSError as exc:
                log.warning("API helper connection failed: %s", exc)
                sock.close()
                continue
            try:
                self._serve(conn)
            except Exception:
                # Never reached by anything a peer sends (every line is handled on its own below); if it is,
                # this connection is given up and ExaBGP restarted, and the reader goes on.
                log.exception("speaker reader failed; restarting ExaBGP")
            finally:
                conn.close()
                self._connection_lost(conn)

    def _serve(self, conn: api_channel.Connection) -> None:
        lines = conn.lines()
        hello = parse_line(next(lines, b""))
        with self._lock:
            proc = self._proc
            if not isinstance(hello, RelayHello) or proc is None or hello.exabgp_pid != proc.pid:
                log.warning("ignoring an API connection that is not from our ExaBGP: %r", hello)
                return
            self._connected(conn)
        for line in lines:
            try:
                self._handle(parse_line(line))
            except Exception:
                # A bug in handling one line must not stop the reader: the next line is read as usual.
                self.handler_errors += 1
                log.exception("failed to handle a line from ExaBGP: %r", line[:200])

    def _connected(self, conn: api_channel.Connection) -> None:
        """A fresh ExaBGP holds nothing we sent: feed the neighbors it was started with."""
        self._conn = conn
        self._channel_since = None
        self._conn_proc = self._proc
        self._connection_done.clear()
        self._held = {}
        self._present = {p.address for p in self._loaded_peers}
        # The config may have changed between spawn and now (ExaBGP then read the old one): the book reloads.
        self._apply_reloads()
        self._send_diff()

    def _connection_lost(self, conn: api_channel.Connection) -> None:
        with self._lock:
            if self._conn is not conn:
                return
            self._conn = None
            self._channel_since = time.monotonic()
            self._present = set()
            self._held = {}
            proc, self._conn_proc = self._conn_proc, None
        if proc is not None and proc.poll() is None and not self._stopping.is_set():
            # The relay died but ExaBGP lives: it would replay nothing to a new relay, so restart it.
            log.warning("API relay of ExaBGP pid %d went away; restarting ExaBGP", proc.pid)
            exabgp_process.terminate(proc)
        self._connection_done.set()

    def _handle(self, item: object) -> None:
        if isinstance(item, RoutesReceived):
            with self._lock:
                self._sessions.routes(item)
            self._emit(item)
        elif isinstance(item, SessionReset):
            # RFC 7606 session reset: the agent drops the peer's routes (the event), ExaBGP ends the session.
            with self._lock:
                if self._conn is not None:
                    self._conn.send([f"neighbor {item.peer} teardown {TEARDOWN_SUBCODE}"])
            self._emit(item)
        elif isinstance(item, StateChange):
            with self._lock:
                event = self._sessions.state_change(item, time.time())
                if isinstance(event, PeerUp):
                    self._present.add(item.peer)  # a session is up: the neighbor exists inside ExaBGP
                    self._announce_all_to(item.peer)
            if event is not None:
                self._emit(event)
        elif isinstance(item, Ack):
            if not item.ok:
                self.command_errors += 1
                log.warning("ExaBGP rejected a command (see %s)", self._files.log)
        elif isinstance(item, BadMessage):
            self.bad_messages += 1
            log.warning("unparseable line from ExaBGP: %s (%s)", item.line[:200], item.error)
            self._emit(item)
        elif isinstance(item, EndOfRib):
            with self._lock:
                complete = self._sessions.end_of_rib(item)
            self._emit(replace(item, complete=complete))
        elif isinstance(item, Ignored | RelayHello):
            pass
        else:
            self._emit(item)  # PeerOpen

    def _emit(self, event: SpeakerEvent) -> None:
        with self._emit_lock:
            try:
                self._on_event(event)
            except Exception:
                log.exception("speaker event handler failed on %r", event)
