"""The Dockerfile, checked without a Docker engine (CI has none, so the image is not built there).

What can be checked statically is: the base image's Python satisfies python_requires; the build context
(after .dockerignore) holds every file the Dockerfile copies and every file setup.cfg needs to `pip install .`
(so the image gets exactly setup.cfg's install_requires); the embedded shell scripts parse; and the CNI
bundle, which copies only the `cni` package next to a trimmed stdlib, is enough for the plugin to import.
"""

import ast
import configparser
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")
# Stdlib parts the bundle leaves out (the Dockerfile's bgpnet-bundle-cni "Leave out" step).
BUNDLE_OMITS = {"tkinter", "idlelib", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils", "unittest",
                "sqlite3", "curses", "dbm", "venv", "test", "_tkinter", "_curses", "readline", "_sqlite3", "_dbm",
                "_gdbm", "nis", "_ssl", "ssl", "_hashlib", "_crypt", "crypt", "_test"}


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and heredoc bodies dropped."""
    out: list[tuple[str, str]] = []
    lines = iter(DOCKERFILE.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest))
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            for body in lines:
                if body == heredoc.group(1):
                    break
    return out


def _heredoc(target: str) -> str:
    match = re.search(rf"^COPY [^\n]*<<'EOF' {re.escape(target)}\n(.*?)^EOF$", DOCKERFILE, re.S | re.M)
    assert match, target
    return match.group(1)


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


def test_base_image_python_satisfies_python_requires():
    (base,) = [args for word, args in _instructions() if word == "FROM"]
    version = re.fullmatch(r"python:(\d+\.\d+)-slim(-\w+)?", base.split()[0]).group(1)
    requires = SpecifierSet(SETUP["options"]["python_requires"])
    assert requires.contains(f"{version}.0"), f"python:{version} vs python_requires {requires}"
    assert not SpecifierSet(">=99").contains(f"{version}.0")  # the comparison can fail


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
    copies = [args for word, args in _instructions() if word == "COPY" and "<<" not in args]
    sources = [s for args in copies for s in args.split()[:-1] if not s.startswith("--")]
    assert {"setup.cfg", "pyproject.toml", "README.md", "bgpnet/", "cni/"} <= set(sources)
    for source in sources:
        assert any(f == source.rstrip("/") or f.startswith(source) for f in context), f"{source} not in context"
    assert not any(f.startswith((".venv/", "tests/", ".git/")) for f in context)


def test_the_build_context_holds_everything_setup_cfg_needs():
    context = _context_files()
    copied = {s.rstrip("/") for word, args in _instructions() if word == "COPY" and "<<" not in args
              for s in args.split()[:-1]}
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


def test_embedded_scripts_are_valid_shell():
    for target in ("/usr/local/bin/bgpnet-bundle-cni", "/usr/local/bin/bgpnet-install-cni"):
        script = _heredoc(target)
        assert script.startswith("#!/bin/sh\n")
        result = subprocess.run(["/bin/sh", "-n"], input=script.encode(), capture_output=True)
        assert result.returncode == 0, f"{target}: {result.stderr.decode()}"
    assert subprocess.run(["/bin/sh", "-n"], input=b"if then fi\n", capture_output=True).returncode != 0


def test_installed_plugin_stub_imports_an_existing_entry_point():
    stub = _heredoc("/usr/local/bin/bgpnet-install-cni")
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
    script = _heredoc("/usr/local/bin/bgpnet-bundle-cni")
    dirs = re.search(r'rm -rf site-packages "config-\$VER"-\* (.*?)&& cd lib-dynload', script, re.S).group(1)
    modules = re.search(r"rm -f (.*?)\)", script, re.S).group(1)
    removed = {w for w in re.findall(r"[\w]+", dirs)} | {w for w in re.findall(r"(\w+)[.*]", modules)}
    assert removed == BUNDLE_OMITS - {"ssl", "crypt"}, "keep BUNDLE_OMITS in step with the Dockerfile"
