"""bgpnet's container image, built with podman where no registry is reachable.

The Dockerfile's default base is the public python image. Without a registry the same Dockerfile is built on a
Debian 12 base made from the distribution's own packages: `mmdebstrap` installs bookworm's minimal system plus
python3 (3.11) and its venv module into a tarball, which `podman import` turns into `localhost/bgpnet-base`.
The tarball is cached under the checkout's `.cache/image/`, named by a hash of its recipe, so a second build
(or CI's second run on the same machine) skips mmdebstrap.

The base takes its apt sources from the host (the same mirror apt uses here) and trusts what the host trusts:
the certificates in /usr/local/share/ca-certificates (a site's TLS-inspecting egress proxy puts its CA there)
are added to the base's store, and pip is told to verify against that store (`/etc/pip.conf`), since the pip
that python3-venv bundles otherwise uses only its own certifi copy.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bgpnet.lab.podman import Podman

BASE_IMAGE = "localhost/bgpnet-base:bookworm"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
PIP_CONF = "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"


class ImageError(RuntimeError):
    """The base or the image could not be built; the message says which step and why."""


@dataclass(frozen=True)
class BaseRecipe:
    suite: str
    packages: tuple[str, ...]
    sources: str  # a deb822 or one-line sources.list text
    extra_cas: tuple[tuple[str, bytes], ...]  # (file name, PEM) added to the base's trust store

    def digest(self) -> str:
        h = hashlib.sha256(f"{self.suite}\0{','.join(self.packages)}\0{self.sources}\0{PIP_CONF}".encode())
        for name, pem in self.extra_cas:
            h.update(name.encode() + b"\0" + pem)
        return h.hexdigest()[:12]


def host_recipe(sources: Path = HOST_SOURCES, cas: Path = HOST_EXTRA_CAS) -> BaseRecipe:
    """The base this host can build: its Debian sources, its extra CA certificates."""
    if not sources.is_file():
        raise ImageError(f"no Debian apt sources at {sources}: the base is built from the distribution's mirror")
    extra = tuple((p.name, p.read_bytes()) for p in sorted(cas.glob("*.crt"))) if cas.is_dir() else ()
    return BaseRecipe(SUITE, BASE_PACKAGES, sources.read_text(), extra)


def mmdebstrap_argv(recipe: BaseRecipe, sources_file: Path, cas_dir: Path, target: Path) -> list[str]:
    """mmdebstrap writing the base as a tarball. Hooks run on the host with the root directory as $1."""
    argv = ["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={','.join(recipe.packages)}",
            "--customize-hook=" + f"printf '%s' '{PIP_CONF}' > \"$1/etc/pip.conf\""]
    if recipe.extra_cas:
        argv += [f"--customize-hook=cp {cas_dir}/*.crt \"$1/usr/local/share/ca-certificates/\"",
                 "--customize-hook=chroot \"$1\" update-ca-certificates"]
    return [*argv, recipe.suite, str(target), str(sources_file)]


def base_tarball(cache_dir: Path, recipe: BaseRecipe) -> Path:
    """The cached base tarball for `recipe`, made with mmdebstrap if it is not there yet."""
    target = cache_dir / f"bgpnet-base-{recipe.suite}-{recipe.digest()}.tar"
    if target.is_file():
        return target
    if shutil.which("mmdebstrap") is None:
        raise ImageError("mmdebstrap is not installed (dev/setup installs it)")
    work = cache_dir / f"recipe-{recipe.digest()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "cas").mkdir(parents=True)
    sources_file = work / "debian.sources"
    sources_file.write_text(recipe.sources)
    for name, pem in recipe.extra_cas:
        (work / "cas" / name).write_bytes(pem)
    partial = target.with_suffix(".tar.partial")
    proc = subprocess.run(mmdebstrap_argv(recipe, sources_file, work / "cas", partial), capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise ImageError(f"mmdebstrap failed ({proc.returncode}): {proc.stderr[-3000:]}")
    partial.rename(target)  # only a complete tarball ever carries the cached name
    shutil.rmtree(work, ignore_errors=True)
    return target


def import_base(podman: Podman, tarball: Path, ref: str = BASE_IMAGE) -> None:
    if podman.has_image(ref):
        return
    with open(tarball, "rb") as f:
        podman("import", "-", ref, stdin=f.fileno(), timeout=600)


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    build_seconds: float
    size_bytes: int


def build_argv(context: Path, tag: str, base: str | None, extra: Sequence[str] = ()) -> list[str]:
    """`podman build` of the checkout's Dockerfile. Host network: RUN steps reach apt's mirror and PyPI the way
    the host does, with no CNI network to set up for the build."""
    argv = ["build", "--network=host", "--pull=never", "-t", tag, *extra]
    if base is not None:
        argv += ["--build-arg", f"BASE={base}"]
    return [*argv, "-f", str(context / "Dockerfile"), str(context)]


def build_image(podman: Podman, context: Path, tag: str, base: str | None = BASE_IMAGE) -> BuiltImage:
    started = time.monotonic()
    podman(*build_argv(context, tag, base), timeout=1200)
    seconds = time.monotonic() - started
    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    return BuiltImage(tag, seconds, size)
