"""Entering a pod's network namespace: open and verify the path, then setns(2) through `_ctypes`.

Python 3.11 has no os.setns, and `import ctypes` costs ~3.5 ms; the C module `_ctypes` alone (~0.6 ms)
is enough to call libc's setns. The path given as CNI_NETNS is checked to be a network namespace (the
NS_GET_NSTYPE ioctl) before anything is created, so a regular file or another kind of namespace is refused
as an invalid CNI_NETNS instead of failing half-way through an ADD.

The node's own network namespace (the one the plugin runs in) is refused too: wiring it as a "pod" would put
the pod address on a node interface and replace the node's default route with the pod's gateway route. A
namespace is identified by its nsfs inode (st_dev, st_ino), the same whatever path names it (/proc/1/ns/net,
/proc/self/ns/net, a bind mount under /run/netns), so no path comparison can be fooled.
"""


import posix

from . import errors
from .errors import CniError

CLONE_NEWNET = 0x40000000
_NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
OWN_NETNS = "/proc/self/ns/net"


def open_netns(path: str) -> int:
    """An O_RDONLY descriptor of the network namespace at `path`; CniError(4) when it is not one."""
    import fcntl

    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError as exc:
        raise CniError(errors.INVALID_ENV, f"invalid CNI_NETNS {path!r}: {posix.strerror(exc.errno or 0)}") \
            from None
    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError:
        kind = -1
    if kind != CLONE_NEWNET:
        posix.close(fd)
        raise CniError(errors.INVALID_ENV, f"invalid CNI_NETNS {path!r}: not a network namespace")
    if is_same_namespace(posix.fstat(fd), posix.stat(OWN_NETNS)):
        posix.close(fd)
        raise CniError(errors.INVALID_ENV, f"invalid CNI_NETNS {path!r}: is the node's own network namespace "
                       "(the plugin's), not a container's")
    return fd


def is_same_namespace(a: "posix.stat_result", b: "posix.stat_result") -> bool:
    """Two stats of nsfs files name one namespace exactly when device and inode agree."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_setns = None


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace `fd`; sockets opened afterwards live there, and
    so do /proc/sys/net lookups."""
    global _setns
    if _setns is None:
        import _ctypes

        class _CInt(_ctypes._SimpleCData):
            _type_ = "i"

        class _CFunc(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = _CInt

        _setns = (_CFunc(_ctypes.dlsym(_ctypes.dlopen(None, 2), "setns")), _ctypes.get_errno)
    call, get_errno = _setns
    if call(fd, CLONE_NEWNET) != 0:
        errno = get_errno()
        raise OSError(errno, f"setns: {posix.strerror(errno)}")
