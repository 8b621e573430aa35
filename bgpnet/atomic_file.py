"""Replace a file so that a reader — or the machine after a crash — sees the old or the new content, never a mix.

The CNI conflist (read by the runtime at every pod start), ExaBGP's config (read on reload) and iproute2's
protocol-name file are all replaced this way: write a temporary file in the same directory (mode 0600 from
creation, as `mkstemp` makes it: the ExaBGP config may hold MD5 keys), fsync it, set its final mode, rename(2)
it over the old one (atomic within a filesystem), then fsync the directory, without which the rename itself
may not survive a power loss.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, content: str, *, mode: int = 0o644) -> bool:
    """Replace `path` with `content` unless it already holds exactly that; returns whether it wrote."""
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
