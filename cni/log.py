"""Human-readable log lines: to the config's `logFile` when set, errors always to stderr too.

stdout belongs to the CNI result; libcni reads it and nothing else. A log line costs one append-mode
write, which is atomic for short lines, so concurrent plugins do not interleave within a line.
"""


import posix
import sys
import time

_log_file: str | None = None
_stderr = None


def configure(log_file: str | None, stderr: object = None) -> None:
    global _log_file, _stderr
    _log_file = log_file
    _stderr = stderr


def log(message: str, error: bool = False) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    line = f"{stamp} bgpnet-cni[{posix.getpid()}] {message}\n"
    if error:
        try:
            stream = _stderr or sys.stderr
            stream.write(line)
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    if _log_file:
        try:
            fd = posix.open(_log_file, posix.O_WRONLY | posix.O_CREAT | posix.O_APPEND | posix.O_CLOEXEC, 0o644)
            try:
                posix.write(fd, line.encode("utf-8", "replace"))
            finally:
                posix.close(fd)
        except OSError:
            pass
