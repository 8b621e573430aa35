"""bgpnet-cni entry point: read the CNI environment and stdin, dispatch, write the result or the error.

`main()` takes its environment, stdin and stdout as arguments so the dispatcher can be driven in-process by
unit tests; the installed executable (`cni/bgpnet-cni`, a launcher run with `python -S`) calls it with the
real ones. Start-up cost is the design constraint: this module and everything on the ADD path import only
C modules (`posix`, `_socket`, `_struct`, `_json`, `fcntl`, `_ctypes`) and the plugin's own small modules,
each imported when a command needs it.
"""


import sys

from . import errors
from .errors import CniError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

_FALLBACK_VERSION = "1.1.0"


def _default_environ() -> dict[str, str]:
    import posix

    return {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
            for k, v in posix.environ.items()}


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None, stdin: "IO[bytes] | None" = None,
         stdout: "IO[str] | None" = None, stderr: "IO[str] | None" = None) -> int:
    """Run one CNI command; returns the exit status (0 on success)."""
    from . import log

    environ = _default_environ() if environ is None else environ
    stdin = sys.stdin.buffer if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    log.configure(None, stderr)
    version = _FALLBACK_VERSION
    command = environ.get("CNI_COMMAND", "?")
    try:
        output, version = _dispatch(environ, stdin, stderr)
    except CniError as exc:
        log.log(f"{command} {environ.get('CNI_CONTAINERID', '')}/{environ.get('CNI_IFNAME', '')} failed: "
                f"code {exc.code}: {exc.msg}" + (f" ({exc.details})" if exc.details else ""), error=True)
        _write(stdout, exc.to_dict(getattr(exc, "cni_version", version)))
        return 1
    except Exception as exc:  # a bug must still answer in the spec's error format
        import traceback

        log.log(f"{command} crashed:\n{traceback.format_exc()}", error=True)
        _write(stdout, CniError(errors.INTERNAL, f"internal error: {exc!r}").to_dict(version))
        return 1
    if output is not None:
        _write(stdout, output)
    return 0


def _write(stdout: "IO[str]", doc: dict) -> None:
    from . import jsonio

    stdout.write(jsonio.dumps(doc))
    stdout.flush()


def _dispatch(environ: dict[str, str], stdin: "IO[bytes]", stderr: "IO[str] | None"
              ) -> tuple[dict | None, str]:
    from . import commands, jsonio, log, request

    inv = request.parse_environment(environ)
    # One byte past the limit is enough to know the config is too large; the rest is never read.
    data = stdin.read(jsonio.MAX_BYTES + 1)
    if inv.command == "VERSION":
        return commands.version(), _FALLBACK_VERSION
    doc = request.decode_config(data)
    version = request.check_version(doc)
    try:
        conf = request.parse_netconf(doc, inv.command)
        log.configure(conf.log_file, stderr)
        if inv.command in ("STATUS", "GC") and version != "1.1.0":
            raise CniError(errors.INCOMPATIBLE_VERSION, f"config version does not allow {inv.command}",
                           f'{inv.command} needs cniVersion 1.1.0, config is "{version}"')
        ctx = commands.Context(environ, data)
        if inv.command == "ADD":
            out = commands.add(inv, conf, ctx)
            log.log(f"ADD {inv.container_id}/{inv.ifname}: "
                    + ", ".join(ip["address"] for ip in out["ips"][-2:]))
            return out, version
        getattr(commands, {"DEL": "delete", "CHECK": "check", "STATUS": "status", "GC": "gc"}[inv.command])(
            inv, conf, ctx)
        log.log(f"{inv.command} {inv.container_id}/{inv.ifname}: ok")
        return None, version
    except CniError as exc:
        exc.cni_version = version  # type: ignore[attr-defined]
        raise
