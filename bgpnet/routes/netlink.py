"""`SocketRouteNetlink`: the real `RouteNetlink`, a raw NETLINK_ROUTE socket sending big batches.

How the kernel behaves, and why the code is shaped like this:
- rtnetlink handles a `sendmsg` synchronously: when the call returns, every message in the buffer has been
  applied (or refused) in order and every answer is already queued on our socket. One failing message never
  stops the ones after it.
- The kernel answers a message with an NLMSG_ERROR when it fails, whether or not NLM_F_ACK was set; with
  NLM_F_ACK it also answers each success. Every answer is its own skb, i.e. one `recv` and ~1 KiB of receive
  buffer each. So by default messages go WITHOUT NLM_F_ACK and each chunk ends with an NLMSG_NOOP barrier
  that does carry NLM_F_ACK: its ack proves every earlier error has been queued, and a message that got no
  error succeeded. `ack_each=True` (one ack per message) exists to be measured against (bench/route_apply.py).
- Answers the receive buffer cannot hold are dropped (the next recv fails with ENOBUFS), so chunks are
  bounded and SO_RCVBUFFORCE makes the buffer large; NETLINK_CAP_ACK keeps each error small (no echo of the
  refused message). Losing answers anyway raises: the caller then no longer knows the kernel state and must
  re-dump it.
- The socket lives in the network namespace of the thread that created it (tests create it inside a netns
  with `bgpnet.lab.netns.entered`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from bgpnet.model import KernelRoute
from bgpnet.routes.messages import (
    ADD_FLAGS,
    AF_INET,
    AF_INET6,
    REPLACE_FLAGS,
    DumpedRoute,
    DumpParser,
    RoutePacker,
    barrier,
    dump_request,
    iter_errors,
)
from bgpnet.routes.seam import ADD, DELETE, REPLACE, BatchFailure, RouteBatch

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_GET_STRICT_CHK = 12
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
_RECV_SIZE = 1 << 20
_DUMP_ATTEMPTS = 3


class NetlinkAnswersLost(OSError):
    """The kernel dropped answers (receive buffer overrun): the outcome of some messages is unknown."""


class SocketRouteNetlink:
    """Route messages over one NETLINK_ROUTE socket, in chunks of `chunk` messages per `sendmsg`."""

    def __init__(self, *, ack_each: bool = False, chunk: int = 4096, buffer_bytes: int = 64 << 20) -> None:
        self.ack_each = ack_each
        self.chunk = chunk
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        for option, fallback in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
            try:  # the FORCE variants ignore net.core.[rw]mem_max; they need CAP_NET_ADMIN, which we have
                self._sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
            except PermissionError:
                self._sock.setsockopt(socket.SOL_SOCKET, fallback, buffer_bytes)
        self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        try:  # lets the kernel filter the dump on protocol and table (Linux >= 4.20)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        except OSError:
            pass  # DumpParser filters again in user space
        self._buf = bytearray(_RECV_SIZE)
        self._next_seq = 1
        self._packers: dict[tuple[int, int], RoutePacker] = {}

    def _packer(self, proto: int, table: int) -> RoutePacker:
        packer = self._packers.get((proto, table))
        if packer is None:
            packer = self._packers[(proto, table)] = RoutePacker(proto, table, ack=self.ack_each)
        return packer

    def dump(self, *, proto: int, table: int, known: Iterable[KernelRoute] = ()) -> list[DumpedRoute]:
        known = list(known)
        for _attempt in range(_DUMP_ATTEMPTS):
            parser = DumpParser(proto, table, known)
            for family in (AF_INET, AF_INET6):
                parser.done = False
                parser.seq = self._take_seqs(1)
                self._sock.send(dump_request(parser.seq, family, proto, table))
                while not parser.done:
                    parser.feed(self._buf, self._recv())
            # A dump spans many recv calls without a lock; if the table changed meanwhile the kernel flags
            # the messages NLM_F_DUMP_INTR and the result may be inconsistent: take it again.
            if not parser.interrupted:
                break
        return parser.routes

    def send(self, batch: RouteBatch, *, proto: int, table: int) -> list[BatchFailure]:
        packer = self._packer(proto, table)
        failures: list[BatchFailure] = []
        step = self.chunk
        for kind, items in ((DELETE, batch.delete), (REPLACE, batch.replace), (ADD, batch.add)):
            for start in range(0, len(items), step):
                part = items[start:start + step]
                first = self._take_seqs(len(part) + 1)  # the messages, then the barrier
                buf = bytearray()
                if kind == DELETE:
                    end = packer.delroutes(buf, part, first)
                else:
                    end = packer.newroutes(buf, part, first, ADD_FLAGS if kind == ADD else REPLACE_FLAGS)
                buf += barrier(end)
                for seq, errno in self._exchange(buf, first, end):
                    failures.append(BatchFailure(kind, start + seq - first, errno))
        return failures

    def _take_seqs(self, n: int) -> int:
        """Reserve n consecutive sequence numbers; answers to an earlier, aborted exchange can then never
        be mistaken for answers to this one."""
        if self._next_seq + n >= 1 << 31:
            self._next_seq = 1
        first = self._next_seq
        self._next_seq += n
        return first

    def _exchange(self, buf: bytearray, first: int, barrier_seq: int) -> list[tuple[int, int]]:
        """Send one chunk, then read answers up to the barrier's ack; return (seq, errno) of the failures."""
        self._sock.send(buf)
        failed = []
        while True:
            size = self._recv()
            for seq, errno in iter_errors(self._buf, size):
                if seq == barrier_seq:
                    return failed
                if errno and first <= seq < barrier_seq:
                    failed.append((seq, errno))

    def _recv(self) -> int:
        try:
            return self._sock.recv_into(self._buf)
        except OSError as exc:
            if exc.errno == 105:  # ENOBUFS
                raise NetlinkAnswersLost(exc.errno, "netlink receive buffer overrun: answers lost") from exc
            raise

    def close(self) -> None:
        self._sock.close()
