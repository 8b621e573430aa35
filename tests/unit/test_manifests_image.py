"""The Dockerfile, checked without a Docker engine (CI has none, so the image is not built there).

What can be checked statically is: the default base image's Python satisfies python_requires, and so does the
local Debian base's; the file is plain Dockerfile syntax (no BuildKit-only features, which podman/buildah
reject); the build context (after .dockerignore) holds every file the Dockerfile copies and every file setup.cfg
needs to `pip install .` (so the image gets exactly setup.cfg's install_requires); the image's scripts
(image/) parse; and the CNI bundle, which copies only the `cni` package next to a trimmed stdlib, is enough for
the plugin to import. tests/privileged/test_image_daemonset.py builds and runs the image with podman.
"""

import ast
import configparser
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet

from bgpnet.lab import image

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")
# Stdlib parts the bundle leaves out (image/bgpnet-bundle-cni's "Leave out" step).
BUNDLE_OMITS = {"tkinter", "idlelib", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils", "unittest",
                "sqlite3", "curses", "dbm", "venv", "test", "_tkinter", "_curses", "readline", "_sqlite3", "_dbm",
                "_gdbm", "nis", "_ssl", "ssl", "_hashlib", "_crypt", "crypt", "_test"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    out: list[tuple[str, str]] = []
    lines = iter(DOCKERFILE.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest))
    return out


def _script(name: str) -> str:
    return (ROOT / "image" / name).read_text()


def _context_files() -> set[str]:
    """Repository files that reach the build context through .dockerignore (last matching rule wins)."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/").removeprefix("**/")
            parts = path.split("/")
            prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
            if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or any(fnmatch.fnmatch(p, pattern) for p in parts
                                                                          if rule.lstrip("!").startswith("**/")):
                keep = negate
        return keep

    return {p for p in tracked if included(p)}


def test_base_image_is_a_build_argument_defaulting_to_the_public_python_image():
    instructions = _instructions()
    assert instructions[0] == ("ARG", "BASE=python:3.11-slim-bookworm")
    assert [args for word, args in instructions if word == "FROM"] == ["${BASE}"]


def test_both_bases_python_satisfies_python_requires():
    default = dict(_instructions())["ARG"].partition("=")[2]
    version = re.fullmatch(r"python:(\d+\.\d+)-slim-(\w+)", default).group(1)
    requires = SpecifierSet(SETUP["options"]["python_requires"])
    assert requires.contains(f"{version}.0"), f"python:{version} vs python_requires {requires}"
    # The local base is Debian's own python3 of the same release (bookworm ships 3.11).
    assert image.SUITE == re.fullmatch(r"python:[\d.]+-slim-(\w+)", default).group(1) == "bookworm"
    assert "python3" in image.BASE_PACKAGES and "python3-venv" in image.BASE_PACKAGES
    assert not SpecifierSet(">=99").contains(f"{version}.0")  # the comparison can fail


def test_plain_dockerfile_syntax_that_buildah_accepts():
    # buildah (podman build) has no BuildKit frontend: no `# syntax=` line, heredocs, --chmod or RUN --mount.
    assert not DOCKERFILE.startswith("# syntax")
    for word, args in _instructions():
        assert "<<" not in args and "--chmod" not in args and "--mount" not in args, (word, args)


def test_pip_installs_into_a_venv_first_on_path():
    # Debian's python3 refuses a system-wide `pip install` (PEP 668); the venv works on both bases.
    runs = [args for word, args in _instructions() if word == "RUN"]
    assert "python3 -m venv /opt/bgpnet" in runs
    assert ("ENV", "PATH=/opt/bgpnet/bin:$PATH") in _instructions()
    venv_at = _instructions().index(("RUN", "python3 -m venv /opt/bgpnet"))
    pip_at = next(i for i, (w, a) in enumerate(_instructions()) if w == "RUN" and "pip install" in a)
    assert venv_at < pip_at


def test_project_is_installed_from_the_source_tree_with_pip():
    runs = [args for word, args in _instructions() if word == "RUN"]
    installs = [r for r in runs if re.search(r"\bpip install\b", r)]
    assert len(installs) == 1
    # `pip install .`: setup.cfg's install_requires decide what is installed, no second list to drift.
    assert re.search(r"\bpip install\b[^&;]* \.(\s|$)", installs[0]), installs[0]
    assert not re.search(r"\s-r\s|requirements", installs[0])
    workdirs = [args for word, args in _instructions() if word == "WORKDIR"]
    assert workdirs[0] == "/src"


def test_every_copied_source_is_in_the_build_context():
    context = _context_files()
    copies = [args for word, args in _instructions() if word == "COPY"]
    sources = [s for args in copies for s in args.split()[:-1] if not s.startswith("--")]
    assert {"setup.cfg", "pyproject.toml", "README.md", "bgpnet/", "cni/", "image/bgpnet-bundle-cni",
            "image/bgpnet-install-cni"} <= set(sources)
    for source in sources:
        assert any(f == source.rstrip("/") or f.startswith(source) for f in context), f"{source} not in context"
    assert not any(f.startswith((".venv/", "tests/", ".git/")) for f in context)


def test_the_build_context_holds_everything_setup_cfg_needs():
    context = _context_files()
    copied = {s.rstrip("/") for word, args in _instructions() if word == "COPY" for s in args.split()[:-1]}
    needed = {SETUP["metadata"]["long_description"].removeprefix("file:").strip(), "pyproject.toml"}
    needed |= {s.strip() for s in SETUP["options"].get("scripts", "").split() if s.strip()}
    packages = [p.strip() for p in SETUP["options.packages.find"]["include"].split() if "*" not in p]
    needed |= {f"{p}/__init__.py" for p in packages}
    for path in needed:
        assert path in context, f"{path} is excluded by .dockerignore"
        assert any(path == c or path.startswith(c + "/") for c in copied), f"{path} is not COPYed"


def test_entrypoints_exist():
    assert "bgpnet = bgpnet.cli:main" in SETUP["options.entry_points"]["console_scripts"]
    assert [a for w, a in _instructions() if w == "ENTRYPOINT"] == ['["bgpnet"]']


def test_image_scripts_are_valid_executable_shell():
    for name in ("bgpnet-bundle-cni", "bgpnet-install-cni"):
        script = _script(name)
        assert script.startswith("#!/bin/sh\n")
        # COPY keeps the file's mode: the executable bit comes from the repository.
        assert (ROOT / "image" / name).stat().st_mode & 0o111 == 0o111, name
        result = subprocess.run(["/bin/sh", "-n"], input=script.encode(), capture_output=True)
        assert result.returncode == 0, f"{name}: {result.stderr.decode()}"
    assert subprocess.run(["/bin/sh", "-n"], input=b"if then fi\n", capture_output=True).returncode != 0


def test_installed_plugin_stub_imports_an_existing_entry_point():
    stub = _script("bgpnet-install-cni")
    assert "from cni.main import main" in stub and "sys.exit(main())" in stub
    result = subprocess.run([sys.executable, "-I", "-S", "-c",
                             f"import sys; sys.path.insert(0, {str(ROOT)!r}); from cni.main import main; "
                             "assert callable(main)"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_cni_package_needs_only_what_the_bundle_carries():
    # The bundle holds the `cni` package and a trimmed stdlib, not bgpnet or any third-party package.
    for path in sorted((ROOT / "cni").rglob("*.py")):
        for name in _top_level_imports(path) - {"cni", "__future__"}:
            assert name in sys.stdlib_module_names, f"{path.relative_to(ROOT)} imports {name}: not in the bundle"
            assert name not in BUNDLE_OMITS, f"{path.relative_to(ROOT)} imports {name}, which the bundle omits"
    script = _script("bgpnet-bundle-cni")
    dirs = re.search(r'rm -rf site-packages "config-\$VER"-\* (.*?)&& cd lib-dynload', script, re.S).group(1)
    modules = re.search(r"rm -f (.*?)\)", script, re.S).group(1)
    removed = {w for w in re.findall(r"[\w]+", dirs)} | {w for w in re.findall(r"(\w+)[.*]", modules)}
    assert removed == BUNDLE_OMITS - {"ssl", "crypt"}, "keep BUNDLE_OMITS in step with image/bgpnet-bundle-cni"
