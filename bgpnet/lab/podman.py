"""podman with a private configuration: its storage, run state and settings live in one directory.

Nothing system-wide is read or changed: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point podman at files
written here. The settings are what this kind of machine needs (see ENVIRONMENT.md, "Images"): runc with the
cgroupfs manager and ulimits set explicitly, because runc cannot apply the unlimited defaults it would otherwise
inherit ("error setting rlimit type 7").

Storage: the overlay driver where the storage directory's file system can be an overlayfs upper layer (ext4,
xfs, btrfs), vfs elsewhere (on overlayfs or tmpfs, as inside another container). vfs works everywhere but copies
the whole image for every container and every build step: ~13 s and 540 MB per bgpnet container here, against
well under a second with overlay.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its arguments and stderr."""


def containers_conf(root: Path, volatile: Path) -> str:
    ulimits = ", ".join(f'"{u}"' for u in ULIMITS)
    return f"""[containers]
default_ulimits = [{ulimits}]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
tmp_dir = "{volatile}/tmp"
"""


OVERLAY_CAPABLE = frozenset({"ext4", "xfs", "btrfs"})


def storage_driver(fs_type: str) -> str:
    return "overlay" if fs_type in OVERLAY_CAPABLE else "vfs"


def fs_type_of(path: Path, mounts: str) -> str:
    """The file system type of the mount holding `path`, from /proc/self/mounts text (longest mount point)."""
    best, kind = "", ""
    resolved = str(path.resolve())
    for line in mounts.splitlines():
        fields = line.split()
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def storage_conf(root: Path, volatile: Path, driver: str) -> str:
    return f"""[storage]
driver = "{driver}"
runroot = "{volatile}/run"
graphroot = "{root}/graph"
"""


class Podman:
    """`podman` bound to the configuration under `root` (created if missing; reused if present).

    Images and containers are stored under `root`; run state (container processes, locks) under `volatile`,
    by default `root` too. A storage kept across reboots needs a `volatile` on tmpfs (under /run): podman
    recognises a reboot by its run state being gone, and would otherwise trust stale "running" records."""

    def __init__(self, root: Path, volatile: Path | None = None) -> None:
        self.root = root
        self.volatile = volatile or root
        for directory in (root / "graph", self.volatile / "run", self.volatile / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(containers_conf(root, self.volatile))
        self.driver = storage_driver(fs_type_of(root, Path("/proc/self/mounts").read_text()))
        (root / "storage.conf").write_text(storage_conf(root, self.volatile, self.driver))
        self.env = {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(root / "storage.conf")}

    def argv(self, *args: str) -> list[str]:
        return ["podman", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, input: bytes | None = None,
                 stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*args), env=self.env, capture_output=True, timeout=timeout,
                              input=input, stdin=stdin)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                             proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            raise PodmanError(f"podman {' '.join(args)} failed ({proc.returncode}): {result.stderr.strip()}")
        return result

    def has_image(self, ref: str) -> bool:
        return self("image", "exists", ref, check=False).returncode == 0
