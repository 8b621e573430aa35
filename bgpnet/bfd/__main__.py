"""`python -m bgpnet.bfd`: the BFD process (bgpnet.bfd.daemon), started and fed by the agent."""

import sys

from bgpnet.bfd.daemon import main

if __name__ == "__main__":
    sys.exit(main())
