"""The built-in IPAM store: one file per reserved address, crash-safe by construction.

Layout (also read by the agent's metrics; keep it this simple):

    <dataDir>/<network name>/                  one directory per network (name checked: [A-Za-z0-9][\\w.-]*)
        <ip>                                   one reservation: canonical address text ("10.244.1.5",
                                               "fd00:10:244:1::5"); content "<containerID>\\n<ifname>\\n"
        last_reserved_ip.<n>                   the address last handed out from range set n (0 = first
                                               family in podCIDRs, 1 = second), for round-robin
        lock                                   flock()ed by every writer
        .attach.<containerID>                  a container's attachment lock, present only while an ADD,
                                               DEL or CHECK of it runs (cni/attachment_lock.py)

A reservation is the exclusive creation (O_CREAT|O_EXCL) of its file, under the directory lock. The kernel
makes the creation atomic, so two plugins can never hold the same address, whatever is killed when: a plugin
killed with SIGKILL at any point loses its flock with its file descriptors and leaves at most a reservation
file (possibly empty, if it died between create and write) that nobody else can take - a leak, never a
duplicate - which GC releases because its owner is not a valid attachment. No fsync: after a power loss the
node's pods are gone anyway, and GC reconciles the store with what the runtime still knows.

`posix` is used instead of `os`: `import os` costs ~1.6 ms and the plugin starts once per pod.
"""


import posix

from . import errors
from .errors import CniError

LOCK_NAME = "lock"
LAST_RESERVED_PREFIX = "last_reserved_ip."
_FILE_MODE = 0o644
_DIR_MODE = 0o755


class Reservation:
    __slots__ = ("ip", "container_id", "ifname")

    def __init__(self, ip: str, container_id: str, ifname: str) -> None:
        self.ip = ip
        self.container_id = container_id
        self.ifname = ifname

    def __repr__(self) -> str:
        return f"Reservation({self.ip!r}, {self.container_id!r}, {self.ifname!r})"


def _store_error(action: str, path: str, exc: OSError) -> CniError:
    return CniError(errors.STORE_FAILURE, f"IPAM store: cannot {action} {path}", posix.strerror(exc.errno or 0))


def makedirs(path: str) -> None:
    parts = path.strip("/").split("/")
    current = ""
    for part in parts:
        current += "/" + part
        try:
            posix.mkdir(current, _DIR_MODE)
        except FileExistsError:
            pass


class Store:
    """The reservation files of one network. Use as a context manager to hold the directory lock."""

    def __init__(self, data_dir: str, network: str, lock_timeout: float = 30.0) -> None:
        self.dir = f"{data_dir.rstrip('/')}/{network}"
        self.lock_timeout = lock_timeout
        self._lock_fd = -1

    # -- locking ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "Store":
        path = f"{self.dir}/{LOCK_NAME}"
        try:
            try:
                fd = posix.open(path, posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC, _FILE_MODE)
            except FileNotFoundError:
                makedirs(self.dir)
                fd = posix.open(path, posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC, _FILE_MODE)
        except OSError as exc:
            raise _store_error("open", path, exc) from None
        lock_or_give_up(fd, self.lock_timeout, f"IPAM store busy: {path} stayed locked for {self.lock_timeout:g} s")
        self._lock_fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd >= 0:
            posix.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    # -- reservations ----------------------------------------------------------------------------------------
    def reserve(self, ip: str, container_id: str, ifname: str) -> bool:
        """Create the reservation file of `ip`; False when someone holds it already."""
        path = f"{self.dir}/{ip}"
        try:
            fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, _FILE_MODE)
        except FileExistsError:
            return False
        except OSError as exc:
            raise _store_error("create", path, exc) from None
        try:
            posix.write(fd, f"{container_id}\n{ifname}\n".encode())
        except OSError as exc:
            posix.close(fd)
            self.release(ip)
            raise _store_error("write", path, exc) from None
        posix.close(fd)
        return True

    def release(self, ip: str) -> None:
        try:
            posix.unlink(f"{self.dir}/{ip}")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _store_error("remove", f"{self.dir}/{ip}", exc) from None

    def reservations(self) -> list[Reservation]:
        """Every reservation file. An empty or unreadable one (a plugin killed between create and write)
        gets an empty owner, so it matches no attachment and GC releases it."""
        out = []
        try:
            names = posix.listdir(self.dir)
        except FileNotFoundError:
            return out
        except OSError as exc:
            raise _store_error("list", self.dir, exc) from None
        for name in names:
            if name == LOCK_NAME or name.startswith(LAST_RESERVED_PREFIX) or name.startswith("."):
                continue
            owner = self._read(f"{self.dir}/{name}").split("\n")
            out.append(Reservation(name, owner[0].strip(), owner[1].strip() if len(owner) > 1 else ""))
        return out

    def release_owner(self, container_id: str, ifname: str) -> list[str]:
        """Release every address held by (container ID, ifname); returns them (none is fine: DEL is
        idempotent)."""
        released = []
        for res in self.reservations():
            if res.container_id == container_id and res.ifname == ifname:
                self.release(res.ip)
                released.append(res.ip)
        return released

    # -- round-robin cursor ----------------------------------------------------------------------------------
    def last_reserved(self, range_set: int) -> str | None:
        text = self._read(f"{self.dir}/{LAST_RESERVED_PREFIX}{range_set}").strip()
        return text or None

    def set_last_reserved(self, range_set: int, ip: str) -> None:
        path = f"{self.dir}/{LAST_RESERVED_PREFIX}{range_set}"
        try:
            fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, _FILE_MODE)
            try:
                posix.write(fd, ip.encode())
            finally:
                posix.close(fd)
        except OSError as exc:
            raise _store_error("write", path, exc) from None

    @staticmethod
    def _read(path: str) -> str:
        try:
            fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
        except OSError:
            return ""
        try:
            return posix.read(fd, 4096).decode("utf-8", "replace")
        finally:
            posix.close(fd)


def lock_or_give_up(fd: int, timeout: float, busy_msg: str) -> None:
    """flock(LOCK_EX) `fd`, but not forever: after `timeout` seconds close `fd` and answer "try again later"
    (code 11) with `busy_msg`. SIGALRM interrupts the blocking flock; the handler's exception ends the wait."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _wait_for_lock(fd, timeout, busy_msg)


def _wait_for_lock(fd: int, timeout: float, busy_msg: str) -> None:
    import _signal
    import fcntl

    class _Timeout(Exception):
        pass

    def on_alarm(signum: int, frame: object) -> None:
        raise _Timeout

    previous = _signal.signal(_signal.SIGALRM, on_alarm)
    _signal.setitimer(_signal.ITIMER_REAL, timeout)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except _Timeout:
        posix.close(fd)
        raise CniError(errors.TRY_AGAIN_LATER, busy_msg) from None
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        _signal.signal(_signal.SIGALRM, previous)
