"""bgpnet's route protocol number, and its name for iproute2.

Every route bgpnet installs carries rtm_protocol 179 (BGP's TCP port as a mnemonic; unused in iproute2's
`rt_protos`, where 186 is the generic "bgp" and 12 "bird"). The number is how bgpnet recognises its own
routes after a restart and how it guarantees never to touch anyone else's. Registering the name only makes
`ip route` print and accept "proto bgpnet"; the kernel knows nothing of names.
"""

from __future__ import annotations

import os
from pathlib import Path

from bgpnet.atomic_file import write_atomically

RTPROT_BGPNET = 179
PROTOCOL_NAME = "bgpnet"
RT_PROTOS_FILE = "/etc/iproute2/rt_protos.d/bgpnet.conf"


def register_protocol_name(path: str | os.PathLike[str] = RT_PROTOS_FILE, *, number: int = RTPROT_BGPNET,
                           name: str = PROTOCOL_NAME) -> bool:
    """Write "<number> <name>" to an iproute2 rt_protos.d file; True when the file changed.

    Idempotent, and atomic (temp file + rename) so a concurrent `ip` never reads half a line."""
    return write_atomically(Path(path), f"{number} {name}\n")
