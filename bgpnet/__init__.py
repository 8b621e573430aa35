"""bgpnet: a pure-L3 Kubernetes pod network that distributes pod routes with BGP."""

__version__ = "0.1.0"
