"""Per-interface kernel knobs written straight to /proc/sys (no `sysctl` process per value)."""


import posix


def write(key: str, value: str) -> None:
    """`write("net/ipv4/conf/bgp0123/proxy_arp", "1")`; the key is joined from checked names only."""
    fd = posix.open(f"/proc/sys/{key}", posix.O_WRONLY | posix.O_CLOEXEC)
    try:
        posix.write(fd, value.encode())
    finally:
        posix.close(fd)


def read(key: str) -> str:
    fd = posix.open(f"/proc/sys/{key}", posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        return posix.read(fd, 256).decode().strip()
    finally:
        posix.close(fd)
