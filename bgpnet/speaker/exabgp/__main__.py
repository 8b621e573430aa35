"""`python -m bgpnet.speaker.exabgp --env FILE CONFIG`: ExaBGP's own entry point, after bgpnet's patches."""

from __future__ import annotations

import sys

from bgpnet.speaker.exabgp import apply_all


def main() -> int:
    apply_all()
    from exabgp.application import run_exabgp

    sys.argv[0] = "exabgp"
    return run_exabgp()


if __name__ == "__main__":
    sys.exit(main())
