# syntax=docker/dockerfile:1.7
# The bgpnet image: the agent (`bgpnet`, with ExaBGP, pyroute2, the kubernetes client) and a self-contained
# copy of the CNI plugin that the DaemonSet's init container installs on the host.
#
# Build:  docker build -t bgpnet:0.1.0 .      (BuildKit: the heredocs below need dockerfile syntax >= 1.4)
# CI has no Docker engine, so this file is not built there; tests/unit/test_manifests_image.py checks it
# statically (base image vs python_requires, what it copies and installs).
#
# Why the CNI plugin is bundled with its own interpreter: the kubelet's runtime executes the plugin on the
# HOST, outside this image, so the `bgpnet-cni` console script pip generates (shebang: this image's python)
# would not run there. Hosts cannot be assumed to have a suitable python3 (Flatcar, Talos, Bottlerocket and
# minimal images have none; others have 3.6-3.12). So the image carries a relocatable copy of its own
# interpreter: the python binary, its stdlib, the `cni` package (stdlib-only by design) and every shared
# library they load, glibc's dynamic loader included, with the ELF interpreter and RPATH pointing into the
# bundle. On the node it needs nothing but a Linux kernel of the image's architecture: no python3, no libc
# of a particular version, not even /bin/sh. Cost: ~40 MB under <cni-bin>/bgpnet/.
FROM python:3.11-slim-bookworm

# iproute2: `ip route show proto bgpnet` and friends when debugging from `kubectl exec`.
# patchelf: the bundle's ELF interpreter must be an absolute path, known only at install time (the host's
# CNI bin dir), so the init container sets it (bgpnet-install-cni below).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 patchelf \
 && rm -rf /var/lib/apt/lists/*

# The project, installed the way setup.cfg declares it: its install_requires are exactly what gets installed.
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY bgpnet/ bgpnet/
COPY cni/ cni/
RUN pip install --no-cache-dir --root-user-action=ignore . \
 && cd / && rm -rf /src
WORKDIR /

# Build the relocatable CNI plugin bundle from this image's own interpreter.
COPY --chmod=0755 <<'EOF' /usr/local/bin/bgpnet-bundle-cni
#!/bin/sh
# Usage: BUNDLE=/opt/bgpnet-cni PYTHON=python3 bgpnet-bundle-cni
# Copies the interpreter, its stdlib, the `cni` package and the closure of shared libraries into $BUNDLE.
set -eu
BUNDLE=${BUNDLE:-/opt/bgpnet-cni}
PYTHON=$(command -v "${PYTHON:-python3}")
REAL_PYTHON=$(readlink -f "$PYTHON")   # the ELF file itself (python3 is a symlink chain)
VER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
STDLIB=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
DYNLOAD=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["platstdlib"])')/lib-dynload
CNI_PKG=$("$PYTHON" -c 'import cni, os; print(os.path.dirname(cni.__file__))')
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/bin" "$BUNDLE/lib" "$BUNDLE/app"
cp "$REAL_PYTHON" "$BUNDLE/bin/python$VER"
# getpath finds the stdlib by its landmark <bin>/../lib/pythonX.Y/os.py, so this layout is self-locating.
cp -R "$STDLIB" "$BUNDLE/lib/python$VER"
if [ ! -d "$BUNDLE/lib/python$VER/lib-dynload" ]; then cp -R "$DYNLOAD" "$BUNDLE/lib/python$VER/"; fi
# Leave out what a CNI plugin never imports (GUI, terminal, databases, TLS, build and test tooling): the
# bundle lives on every node, and _tkinter alone would drag in X11.
(cd "$BUNDLE/lib/python$VER" \
 && rm -rf site-packages "config-$VER"-* test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data distutils \
           unittest sqlite3 curses dbm venv \
 && cd lib-dynload \
 && rm -f _tkinter.* _curses* readline.* _sqlite3.* _dbm.* _gdbm.* nis.* _ssl.* _hashlib.* _crypt.* _test*)
find "$BUNDLE/lib/python$VER" -name __pycache__ -prune -exec rm -rf {} +
cp -R "$CNI_PKG" "$BUNDLE/app/cni"
find "$BUNDLE/app" -name __pycache__ -prune -exec rm -rf {} +
# The loader glibc's ld.so and every library the interpreter or a stdlib extension module loads.
INTERP=$(patchelf --print-interpreter "$REAL_PYTHON")
cp -L "$INTERP" "$BUNDLE/lib/"
for elf in "$REAL_PYTHON" "$BUNDLE/lib/python$VER/lib-dynload/"*.so; do ldd "$elf"; done \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u \
  | while read -r lib; do cp -L "$lib" "$BUNDLE/lib/"; done
# DT_RPATH (not RUNPATH: --force-rpath) is also searched for the dependencies of dependencies, so no library
# is ever taken from the host; glibc's own objects are found the same way and need no patching.
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$BUNDLE/bin/python$VER"
for lib in "$BUNDLE/lib/"*.so*; do
  case "$(basename "$lib")" in ld-linux*|libc.so.*|libm.so.*) ;; *) patchelf --force-rpath --set-rpath '$ORIGIN' "$lib" ;; esac
done
for mod in "$BUNDLE/lib/python$VER/lib-dynload/"*.so; do
  patchelf --force-rpath --set-rpath '$ORIGIN/../..' "$mod"
done
basename "$INTERP" > "$BUNDLE/INTERP"
echo "python$VER" > "$BUNDLE/PYTHON"
# Prove the bundle runs on its own (its loader, its libc, its stdlib) and precompile it: unchecked-hash pycs
# stay valid after a copy changes the files' mtimes, and the plugin never writes __pycache__ on the host.
patchelf --set-interpreter "$BUNDLE/lib/$(basename "$INTERP")" "$BUNDLE/bin/python$VER"
"$BUNDLE/bin/python$VER" -I -m compileall -q -j0 --invalidation-mode unchecked-hash \
  "$BUNDLE/lib/python$VER" "$BUNDLE/app" >/dev/null || true
"$BUNDLE/bin/python$VER" -IS -c "import sys; sys.path.insert(0, '$BUNDLE/app'); import cni.main"
(cd "$BUNDLE" && find . -type f ! -name BUNDLE_ID | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-12) \
  > "$BUNDLE/BUNDLE_ID"
EOF
RUN BUNDLE=/opt/bgpnet-cni bgpnet-bundle-cni

COPY --chmod=0755 <<'EOF' /usr/local/bin/bgpnet-install-cni
#!/bin/sh
# The init container: installs the bundled CNI plugin into the host's CNI bin dir.
#   CNI_BIN_DIR_HOST   the CNI bin dir as the HOST sees it (default /opt/cni/bin; the runtime's bin_dir)
#   CNI_BIN_DIR_MOUNT  the same directory as mounted in this container (default /host/opt/cni/bin)
# Layout on the host: <cni-bin>/bgpnet-cni (a 5-line script) and <cni-bin>/bgpnet/<bundle id>/ (interpreter).
# Every step is idempotent and the plugin file is replaced by rename, so a pod set up during an upgrade sees
# the old plugin or the new one, never a half-written file.
set -eu
SRC=/opt/bgpnet-cni
HOST=${CNI_BIN_DIR_HOST:-/opt/cni/bin}
MOUNT=${CNI_BIN_DIR_MOUNT:-/host/opt/cni/bin}
ID=$(cat "$SRC/BUNDLE_ID")
PY=$(cat "$SRC/PYTHON")
DEST="$MOUNT/bgpnet/$ID"
if [ ! -f "$DEST/.complete" ]; then
  rm -rf "$DEST" "$DEST.tmp"
  mkdir -p "$MOUNT/bgpnet"
  cp -R "$SRC" "$DEST.tmp"
  # The kernel resolves a shebang's interpreter, and the interpreter's PT_INTERP, as absolute host paths.
  # The RPATH becomes absolute too: ld.so expands $ORIGIN of a main program through /proc/self/exe, which
  # a runtime without /proc (or a chroot) does not offer.
  patchelf --set-interpreter "$HOST/bgpnet/$ID/lib/$(cat "$SRC/INTERP")" \
           --force-rpath --set-rpath "$HOST/bgpnet/$ID/lib" "$DEST.tmp/bin/$PY"
  touch "$DEST.tmp/.complete"
  mv "$DEST.tmp" "$DEST"
fi
# -I: ignore PYTHON* variables and user site dirs of whatever environment the runtime passes;
# -S: no site module (saves ~20 ms per pod ADD/DEL).
cat > "$MOUNT/.bgpnet-cni.tmp" <<PLUGIN
#!$HOST/bgpnet/$ID/bin/$PY -IS
import sys
sys.path.insert(0, "$HOST/bgpnet/$ID/app")
from cni.main import main
sys.exit(main())
PLUGIN
chmod 0755 "$MOUNT/.bgpnet-cni.tmp"
mv -f "$MOUNT/.bgpnet-cni.tmp" "$MOUNT/bgpnet-cni"
# Keep this bundle and the one before it (a plugin started a moment ago may still be importing from it).
ls -1t "$MOUNT/bgpnet" | grep -v -e "^$ID\$" -e '\.tmp$' | tail -n +2 | while read -r old; do
  rm -rf "${MOUNT:?}/bgpnet/$old"
done
echo "installed $HOST/bgpnet-cni (bundle $ID)"
EOF

# The agent runs as root with only NET_ADMIN and NET_BIND_SERVICE (see manifests/30-daemonset.yaml).
ENTRYPOINT ["bgpnet"]
CMD ["agent"]
