"""One lock per container ID, so that ADD, DEL and CHECK of one container run one after the other.

Without it, a DEL running while an ADD of the same container sits between its reservation and its wiring
finds no veth to remove, releases the reservation, and the ADD then wires a pod whose address the store
calls free: the next ADD hands that address out a second time. With the commands of one container in
sequence only two outcomes remain, both consistent: DEL then ADD (the pod is wired and its address
reserved) or ADD then DEL (nothing is left).

The lock is an flock on `<store dir>/.attach.<container ID>` (a dot file: neither the store nor the agent's
usage count mistakes it for an address). Lock order: the attachment lock first, then the store lock, which
commands hold only briefly inside it; GC, which holds the store lock, only ever *tries* attachment locks, so
the two cannot deadlock. The file exists only while a command holds it - the holder unlinks it before
unlocking - so none accumulates per container ever seen. A waiter that wakes up holding the flock of a file
unlinked meanwhile finds the path gone or naming another inode, and starts over on the current file: one
holder per container at any time. A plugin killed while holding it leaves the (unlocked) file behind; the
next command for that container simply uses it, and GC removes it.
"""


import posix

from . import errors
from .errors import CniError
from .store import lock_or_give_up, makedirs

PREFIX = ".attach."
_MAX_ID_IN_NAME = 240  # NAME_MAX is 255; IDs sharing their first 240 characters only share a lock
WAIT_SECONDS = 60.0


def lock_path(store_dir: str, container_id: str) -> str:
    return f"{store_dir}/{PREFIX}{container_id[:_MAX_ID_IN_NAME]}"


class AttachmentLock:
    """`with AttachmentLock(dir, id):` holds the container's lock (CniError 11 after `timeout` seconds)."""

    def __init__(self, store_dir: str, container_id: str, timeout: float = WAIT_SECONDS) -> None:
        self.store_dir = store_dir
        self.container_id = container_id
        self.path = lock_path(store_dir, container_id)
        self.timeout = timeout
        self._fd = -1

    def __enter__(self) -> "AttachmentLock":
        busy = (f"container {self.container_id} busy: another ADD, DEL or CHECK of it held {self.path} for "
                f"{self.timeout:g} s")
        while True:
            fd = self._open()
            lock_or_give_up(fd, self.timeout, busy)
            if self._is_current(fd):
                self._fd = fd
                return self
            posix.close(fd)

    def try_acquire(self) -> bool:
        """Take the lock without waiting; False when another command holds it."""
        import fcntl

        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            posix.close(fd)
            return False
        if not self._is_current(fd):
            posix.close(fd)
            return False
        self._fd = fd
        return True

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            posix.unlink(self.path)  # still locked: nobody can have taken this file meanwhile
        except OSError:
            pass  # a leftover file is harmless: the next holder reuses it
        posix.close(self._fd)  # closing the descriptor drops the flock
        self._fd = -1

    def _open(self) -> int:
        flags = posix.O_RDWR | posix.O_CREAT | posix.O_CLOEXEC
        try:
            try:
                return posix.open(self.path, flags, 0o644)
            except FileNotFoundError:
                makedirs(self.store_dir)
                return posix.open(self.path, flags, 0o644)
        except OSError as exc:
            raise CniError(errors.STORE_FAILURE, f"IPAM store: cannot open {self.path}",
                           posix.strerror(exc.errno or 0)) from None

    def _is_current(self, fd: int) -> bool:
        """Whether the locked descriptor is still the file the path names (not one unlinked meanwhile)."""
        try:
            named = posix.stat(self.path)
        except FileNotFoundError:
            return False
        held = posix.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def sweep_leftovers(store_dir: str) -> list[str]:
    """Remove the lock files killed plugins left behind (those nobody holds); returns their container IDs."""
    try:
        names = posix.listdir(store_dir)
    except OSError:
        return []
    swept = []
    for name in names:
        if name.startswith(PREFIX):
            lock = AttachmentLock(store_dir, name[len(PREFIX):])
            if lock.try_acquire():
                lock.release()
                swept.append(lock.container_id)
    return swept
