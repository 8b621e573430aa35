"""The seam to nftables: hands a JSON batch to `nft -j -f -` (one kernel transaction per batch).

The `nft` command's JSON interface is nftables' documented machine interface (libnftables-json(5)); the
Python bindings are the same library but ship only as a Debian package, not on PyPI, so the agent runs the
command. A batch either applies whole or not at all, so a failure leaves the previous rules in place.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any


class NftError(RuntimeError):
    """nft refused the batch (its message) or could not be run."""


def apply(batch: dict[str, Any], nft: str = "nft", timeout: float = 10.0) -> None:
    try:
        proc = subprocess.run([nft, "-j", "-f", "-"], input=json.dumps(batch), capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NftError(f"cannot run {nft}: {exc}") from exc
    if proc.returncode != 0:
        raise NftError(" ".join(proc.stderr.split()) or f"{nft} exited with {proc.returncode}")


def table_exists(family: str, name: str, nft: str = "nft") -> bool:
    proc = subprocess.run([nft, "-j", "list", "table", family, name], capture_output=True, text=True)
    return proc.returncode == 0
