"""`python -m bgpnet.bfd`: the BFD process (bgpnet.bfd.daemon), started and fed by the agent."""

import signal
import sys

from bgpnet.bfd.daemon import main

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
