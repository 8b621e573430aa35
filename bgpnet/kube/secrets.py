"""MD5 passwords for BGP sessions, read from a Kubernetes Secret key or from a file (a mounted Secret).

Only references live in the config (`PasswordRef`); values are read here, at run time, and travel as
`Md5Password`, whose repr is redacted, so neither logs, status nor metrics can show one by accident. The
agent re-reads them on every periodic resync, so a rotated Secret reaches the speaker (and re-keys only the
sessions whose password changed) without a restart. The default RBAC grants `get` on one Secret by name
(`bgpnet-system/bgpnet-bgp-passwords`), no list and no watch; a file reference needs no API access at all.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bgpnet.config import PasswordRef
from bgpnet.model import Md5Password

# RFC 2385 keys are at most 80 bytes on Linux (TCP_MD5SIG_MAXKEYLEN).
MAX_KEY_BYTES = 80


class PasswordUnavailable(Exception):
    """A password could not be read; the message names the reference, never the value."""

    def __init__(self, ref: PasswordRef, reason: str) -> None:
        super().__init__(f"MD5 password ({ref}): {reason}")
        self.ref = ref


def _checked(ref: PasswordRef, raw: bytes) -> Md5Password:
    # A trailing newline is what `echo secret > file` and most Secret generators leave behind; no BGP
    # implementation treats it as part of the key.
    value = raw.rstrip(b"\r\n")
    if not value:
        raise PasswordUnavailable(ref, "empty")
    if len(value) > MAX_KEY_BYTES:
        raise PasswordUnavailable(ref, f"longer than {MAX_KEY_BYTES} bytes (the kernel's TCP-MD5 limit)")
    try:
        return Md5Password(value.decode("utf-8"))
    except UnicodeDecodeError:
        raise PasswordUnavailable(ref, "not UTF-8 text") from None


class PasswordReader:
    """Reads `PasswordRef`s: Secret keys through the API (when a connection is given), files directly."""

    def __init__(self, api: client.ApiClient | None) -> None:
        self._core = client.CoreV1Api(api) if api is not None else None

    def read(self, ref: PasswordRef) -> Md5Password:
        if ref.file:
            try:
                return _checked(ref, Path(ref.file).read_bytes())
            except OSError as exc:
                raise PasswordUnavailable(ref, exc.strerror or type(exc).__name__) from None
        if self._core is None:
            raise PasswordUnavailable(ref, "no Kubernetes API client")
        try:
            secret = self._core.read_namespaced_secret(ref.name, ref.namespace, _request_timeout=10)
        except ApiException as exc:
            raise PasswordUnavailable(ref, f"API error {exc.status} {exc.reason}") from None
        except Exception as exc:  # connection errors of any kind: unreachable now, retried at the next resync
            raise PasswordUnavailable(ref, f"API unreachable ({type(exc).__name__})") from None
        data = (secret.data or {}).get(ref.key)
        if data is None:
            raise PasswordUnavailable(ref, f"the Secret has no key {ref.key!r}")
        try:
            return _checked(ref, base64.b64decode(data, validate=True))
        except binascii.Error:
            raise PasswordUnavailable(ref, "the Secret's value is not valid base64") from None
