"""Lab agents that find the API server as a DaemonSet pod does: in-cluster config, TLS and a service-account token.

In a pod, `kubernetes.config.load_incluster_config` reads KUBERNETES_SERVICE_HOST/PORT from the environment and
the token and CA from /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}, and talks https only. The lab
gives each agent exactly that without touching the host's files: a throwaway self-signed server certificate for
the API stand-in's address (made with the `openssl` CLI; the certificate is its own CA), a random token, and a
per-agent view of /run in which that directory exists.

The view comes from a mount namespace: `ip netns exec` already runs the command in a private one (mounts made
there propagate nowhere: it marks / as a slave). `sh` then mounts a tmpfs on /run (/var/run is a symlink to it)
and binds every entry of the host's /run back on it, so the agent still sees the same files and directories
there (a lab workdir under /run/bgpnet-lab included); only `secrets/` is the agent's own. The host's /run stays
reachable through the shell's working directory after the tmpfs covers it. Then `exec` makes the agent the
process the lab started: its PID is the one the lab tracks and signals.

Pure functions build the argv and environment; `write_credentials` is the only side effect (two files and
`openssl` in the given directory).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CERT_DAYS = 2  # a lab is short-lived; an expired certificate can never be mistaken for a valid one later

# $1 token file, $2 CA file, then the agent's argv. `set -e`: a failed mount aborts before the agent starts, so an
# agent never runs with a half-built /run. `mount -n`: libmount would otherwise lock and write its utab in
# /run/mount, and the first mount happens while /run is still the host's own directory. `-c`: a relative bind
# source must stay relative (resolved by the kernel from the working directory, the covered /run); libmount
# would canonicalize it to "/run/<entry>", which by then is the new tmpfs.
_MOUNT_SCRIPT = r"""set -e
token=$1 ca=$2; shift 2
back=$(pwd)
cd /run
mount -n -t tmpfs -o mode=0755 bgpnet-lab-run /run
for e in * .[!.]* ..?*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  [ "$e" = secrets ] && continue
  if [ -L "$e" ]; then cp -P "$e" "/run/$e"
  elif [ -d "$e" ]; then mkdir "/run/$e"; mount -n -c --rbind "$e" "/run/$e"
  else : > "/run/$e"; mount -n -c --bind "$e" "/run/$e"
  fi
done
d=/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$d"
cp "$token" "$d/token"
cp "$ca" "$d/ca.crt"
cd "$back" 2>/dev/null || cd /
exec "$@"
"""


@dataclass(frozen=True)
class ApiCredentials:
    """What the stand-in serves with and what an in-cluster agent is handed."""

    cert: Path  # the stand-in's certificate, also the CA clients trust (self-signed)
    key: Path
    token_file: Path

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()


def write_credentials(directory: Path, ip: str) -> ApiCredentials:
    """A fresh EC P-256 key and self-signed certificate for `ip` (subjectAltName IP, which is what a client
    checks the address it dialled against) and a random token, written under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, token_file = directory / "api.crt", directory / "api.key", directory / "token"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", str(CERT_DAYS), "-subj", "/CN=bgpnet-lab-api", "-addext", f"subjectAltName=IP:{ip}",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl could not make the API certificate for {ip}: {proc.stderr.strip()}")
    token_file.touch(mode=0o600)
    token_file.write_text(secrets.token_urlsafe(32))
    return ApiCredentials(cert=cert, key=key, token_file=token_file)


def in_cluster_argv(argv: Sequence[str], credentials: ApiCredentials) -> list[str]:
    """`argv` run with the service-account files in place (to be run inside a private mount namespace, as
    `ip netns exec` gives; the same PID ends up running `argv`)."""
    return ["sh", "-c", _MOUNT_SCRIPT, "sh", str(credentials.token_file), str(credentials.cert), *argv]


def in_cluster_env(host: str, port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the kubelet gives a pod for the `kubernetes` Service, on top of `base` (default: ours).

    KUBECONFIG is dropped: the agent's --kubeconfig defaults to it, and a node has none."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "KUBECONFIG"}
    env.update(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=str(port))
    return env
