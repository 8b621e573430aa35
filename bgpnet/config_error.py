"""The one error type of configuration parsing, apart from bgpnet.config so that parsers of sections living in
their own modules (bgpnet.lb_pools) can raise it without importing the whole config."""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid configuration value; `field` names the key as it appears in the file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
