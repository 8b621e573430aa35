"""Bidirectional Forwarding Detection (RFC 5880, single hop per RFC 5881): the control packet (`packet`) and
the session state machine with its timers (`session`), both pure; the process that runs sessions over UDP
(`daemon`, `python -m bgpnet.bfd`)."""
