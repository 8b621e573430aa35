"""What a running lab consists of, persisted so a later process (`status`, `down`) can find all of it again.

`up` writes the state file before it creates anything and rewrites it after every namespace and process, so
even an `up` killed half-way leaves a record `down` can act on. Teardown trusts only that record: it stops
exactly the recorded processes (PID *and* start time must match, see bgpnet.lab.processes), deletes exactly
the recorded namespaces (names carrying the lab's tag), and removes the lab's own work directory.
Writes are atomic (temp file + rename), so a reader never sees half a record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bgpnet.lab.netns import NetnsGroup, kill_processes_in
from bgpnet.lab.podman import Podman
from bgpnet.lab.processes import ProcessId, identify, is_running, stop

DEFAULT_STATE_DIR = Path("/run/bgpnet-lab")
STATE_FILE = "state.json"


class LabExists(RuntimeError):
    pass


@dataclass
class LabState:
    tag: str
    workdir: str
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessId] = field(default_factory=list)
    # Filled once the lab is built: the JSON description `status` and `--json` show.
    description: dict[str, Any] | None = None
    # Agents run from the image (`up --image`): podman's private configuration and the containers started.
    podman_root: str = ""
    podman_volatile: str = ""
    containers: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw = json.loads(text)
        return cls(tag=raw["tag"], workdir=raw["workdir"], namespaces=list(raw["namespaces"]),
                   processes=[ProcessId(**p) for p in raw["processes"]], description=raw.get("description"),
                   podman_root=raw.get("podman_root", ""),
                   podman_volatile=raw.get("podman_volatile", ""), containers=list(raw.get("containers", [])))


class StateStore:
    """The state file of the one lab that may run per state directory."""

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.dir = state_dir
        self.path = state_dir / STATE_FILE

    def load(self) -> LabState | None:
        try:
            return LabState.from_json(self.path.read_text())
        except FileNotFoundError:
            return None

    def claim(self, state: LabState) -> None:
        """Create the state file, failing if a lab is already recorded here (O_EXCL: two `up`s cannot race)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise LabExists(f"a lab is already recorded in {self.path}: run `bgpnet lab down` first") from None
        with os.fdopen(fd, "w") as f:
            f.write(state.to_json())

    def save(self, state: LabState) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".tmp").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: something else lives there, leave it
            self.dir.rmdir()

    def recorder(self, state: LabState) -> Callable[[NetnsGroup], None]:
        """A NetnsGroup `on_change` hook that keeps the state file in step with the group."""

        def record(group: NetnsGroup) -> None:
            state.namespaces = [ns.name for ns in group.namespaces]
            known = {p.pid for p in state.processes}
            for proc in group.processes:
                if proc.pid in known:
                    continue
                with contextlib.suppress(ProcessLookupError):  # already gone: nothing to stop later
                    state.processes.append(identify(proc.pid, _short_name(proc.args)))
            self.save(state)

        return record


def _short_name(args: object) -> str:
    argv = [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]
    prefix = ""
    if argv[:3] == ["ip", "netns", "exec"]:
        prefix, argv = f"[{argv[3]}] ", argv[4:]
    return (prefix + " ".join([Path(argv[0]).name, *argv[1:]]))[:120] if argv else prefix


@dataclass
class TeardownReport:
    stopped: list[str] = field(default_factory=list)
    deleted_namespaces: list[str] = field(default_factory=list)
    removed_paths: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def teardown(state: LabState, store: StateStore, progress: Callable[[str], None] = lambda _m: None
             ) -> TeardownReport:
    """Remove everything the record names, then the record itself. Safe to run again."""
    report = TeardownReport()
    if state.containers:
        # Before the namespaces go: podman stops each agent with SIGTERM (it leaves its routes and stops
        # ExaBGP) and removes the container's record, which would otherwise outlive the lab in podman's storage.
        progress(f"removing containers {', '.join(state.containers)}")
        podman = Podman(Path(state.podman_root), Path(state.podman_volatile or state.podman_root))

        def present() -> set[str]:
            names = podman("ps", "--all", "--format", "{{.Names}}", check=False).stdout.split()
            return set(names) & set(state.containers)

        before = present()
        podman("rm", "--force", "--ignore", "--time", "10", *state.containers, check=False, timeout=120)
        after = present()
        report.leftovers += [f"container {name}" for name in sorted(after)]
        report.stopped += [f"container {name}" for name in sorted(before - after)]
    running = [p for p in state.processes if is_running(p)]
    for proc in running:
        progress(f"stopping pid {proc.pid}: {proc.name}")
    report.stopped += [f"{p.pid} {p.name}" for p in stop(running)]
    report.leftovers += [f"process {p.pid} ({p.name})" for p in state.processes if is_running(p)]
    for name in reversed(state.namespaces):
        if not name.startswith(state.tag + "-"):
            report.leftovers.append(f"namespace {name} (not the lab's tag {state.tag}: left alone)")
            continue
        if not Path(f"/run/netns/{name}").exists():
            continue
        # Whatever still runs inside (an agent's ExaBGP, a router the operator started in the ToR) lives in
        # a namespace the lab created, so it belongs to the lab too.
        kill_processes_in(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        if Path(f"/run/netns/{name}").exists():
            report.leftovers.append(f"namespace {name}")
        else:
            report.deleted_namespaces.append(name)
    workdir = Path(state.workdir)
    if workdir.parent == store.dir and workdir.name == state.tag and workdir.exists():
        progress(f"removing {workdir}")
        shutil.rmtree(workdir, ignore_errors=True)
        report.removed_paths.append(str(workdir))
        if workdir.exists():
            report.leftovers.append(f"directory {workdir}")
    store.remove()
    return report
