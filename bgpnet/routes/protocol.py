"""bgpnet's route protocol number, and its name for iproute2.

Every route bgpnet installs carries rtm_protocol 179 (BGP's TCP port as a mnemonic; unused in iproute2's
`rt_protos`, where 186 is the generic "bgp" and 12 "bird"). The number is how bgpnet recognises its own
routes after a restart and how it guarantees never to touch anyone else's. Registering the name only makes
`ip route` print and accept "proto bgpnet"; the kernel knows nothing of names.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

RTPROT_BGPNET = 179
PROTOCOL_NAME = "bgpnet"
RT_PROTOS_FILE = "/etc/iproute2/rt_protos.d/bgpnet.conf"


def register_protocol_name(path: str | os.PathLike[str] = RT_PROTOS_FILE, *, number: int = RTPROT_BGPNET,
                           name: str = PROTOCOL_NAME) -> bool:
    """Write "<number> <name>" to an iproute2 rt_protos.d file; True when the file changed.

    Idempotent, and atomic (temp file + rename) so a concurrent `ip` never reads half a line."""
    target = Path(path)
    line = f"{number} {name}\n"
    try:
        if target.read_text() == line:
            return False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(line)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return True
