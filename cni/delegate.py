"""Running a standard IPAM plugin (host-local, static, dhcp...) named by the config's `ipam.type`.

As the spec describes: the executable is looked up in CNI_PATH, receives the same network configuration on
stdin and the same environment, and its result (or CNI error) is read from stdout. Used for ADD, DEL, CHECK,
STATUS and GC whenever the config delegates IPAM.
"""


import posix

from . import errors, jsonio
from .errors import CniError

_MAX_DETAILS = 1000  # characters of a delegate's unusable output worth echoing in an error


def find(plugin: str, search_path: tuple[str, ...]) -> str:
    for directory in search_path:
        candidate = f"{directory.rstrip('/')}/{plugin}"
        if posix.access(candidate, posix.X_OK):
            return candidate
    raise CniError(errors.INVALID_CONFIG, f'invalid network config: "ipam.type" plugin {plugin!r} not found '
                   f"in CNI_PATH {':'.join(search_path)!r}")


def run(plugin: str, search_path: tuple[str, ...], command: str, environ: dict[str, str], stdin: bytes
        ) -> dict | None:
    """Execute the IPAM plugin for `command`; its decoded result, or None when it printed nothing."""
    import subprocess

    executable = find(plugin, search_path)
    env = dict(environ)
    env["CNI_COMMAND"] = command
    proc = subprocess.run([executable], input=stdin, env=env, capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8", "replace").strip()
    doc = None
    if out and not jsonio.bounds_problem(proc.stdout):
        try:
            doc = jsonio.loads(out)
        except ValueError:
            doc = None
    if proc.returncode != 0:
        if isinstance(doc, dict) and isinstance(doc.get("code"), int):
            raise CniError(doc["code"], str(doc.get("msg", "")), str(doc.get("details", "")))
        raise CniError(errors.DELEGATE_FAILED, f"IPAM plugin {plugin} {command} failed "
                       f"(exit {proc.returncode})", proc.stderr.decode("utf-8", "replace").strip())
    if out and not isinstance(doc, dict):
        raise CniError(errors.DELEGATE_FAILED, f"IPAM plugin {plugin} {command} printed no JSON result",
                       out[:_MAX_DETAILS])
    return doc
