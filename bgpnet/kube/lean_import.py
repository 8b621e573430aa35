"""The official `kubernetes` client's pieces the agent uses, imported without the package `__init__`s that
import all of it.

`import kubernetes.client.rest` first runs `kubernetes/__init__.py`, which imports `dynamic`, `watch`,
`stream`, `utils`, `leaderelection` and `informer` (and through them jsonschema, kubernetes_validate...), and
`kubernetes/utils/__init__.py` (reached through `kubernetes.client.rest`) imports `create_from_yaml` and
`metrics`; `kubernetes/config/__init__.py` imports the kubeconfig loader (requests, oauthlib) even for the
in-cluster config. The agent needs none of that. So, before the first import of the client, each of those
three packages is put in `sys.modules` as a *deferred package*: the real module object, made from the real
spec (same `__path__`, `__file__`, loader), whose `__init__` body has not run yet. Its submodules import from
it as usual. Its PEP 562 `__getattr__` runs the real `__init__` the first time anyone asks for an attribute
it does not have yet (`kubernetes.watch`, `from kubernetes import dynamic`, `kubernetes.__version__`...), so
code elsewhere in the process that imports `kubernetes` normally sees the package it expects, only later.

Guarantees:
- This module imported first: the deferred packages as above; any later ordinary use completes them.
- `kubernetes` imported normally first: nothing is deferred (those modules are already in `sys.modules`),
  this module only imports the submodules below, so the agent code runs the same, without the saving.
- The client classes are the real ones, from their real modules; nothing is copied or patched.
- `kubernetes.client.api_client` is not among them: it imports pydantic, dateutil and multiprocessing.pool
  (~9 MB) for what the agent never does; `connection.py` sends through `Configuration` and `rest` directly.
- A client whose layout no longer fits (a package became a module, a name moved) fails here, at import,
  with `LeanImportError` naming what is missing. setup.cfg pins kubernetes>=37,<38; `tests/unit/
  test_kube_lean_import.py` counts what an agent import loads, so a layout that silently loads everything
  again shows there.

This is the only module that knows the trick: the rest of `bgpnet.kube` imports the client from here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from typing import Any

# Packages whose `__init__` imports far more than the agent uses; parents before children.
DEFERRED_PACKAGES = ("kubernetes", "kubernetes.utils", "kubernetes.config")
_PIN = "setup.cfg pins kubernetes>=37,<38"
_lock = threading.RLock()


class LeanImportError(ImportError):
    """The installed kubernetes client no longer has the layout this module relies on."""

    def __init__(self, what: str) -> None:
        super().__init__(f"bgpnet.kube.lean_import: the installed kubernetes client {what} ({_PIN}; "
                         f"update bgpnet/kube/lean_import.py for the new layout)")


_pending: set[str] = set()  # deferred packages whose real `__init__` has not run yet


def _defer(name: str) -> None:
    if name in sys.modules:
        return  # imported already (normally, or deferred by an earlier import of this module): leave it be
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        raise LeanImportError(f"has no package {name}")
    module = importlib.util.module_from_spec(spec)

    def run_init() -> None:
        with _lock:
            if name in _pending:
                _pending.discard(name)
                del module.__dict__["__getattr__"], module.__dict__["__dir__"]
                spec.loader.exec_module(module)  # the real __init__, in the module object everyone holds

    def __getattr__(attr: str) -> Any:  # PEP 562: only reached for attributes the module lacks
        run_init()
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    def __dir__() -> list[str]:
        run_init()
        return sorted(module.__dict__)

    module.__dict__.update(__getattr__=__getattr__, __dir__=__dir__)
    _pending.add(name)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def is_deferred(name: str) -> bool:
    """True while `name` is a package this module deferred and nobody has used beyond its submodules."""
    return name in _pending


def _attr(module_name: str, attr: str) -> Any:
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise LeanImportError(f"has no {module_name}.{attr} ({exc})") from exc


for _name in DEFERRED_PACKAGES:
    _defer(_name)

CLIENT_VERSION: str = _attr("kubernetes.client", "__version__")
Configuration: Any = _attr("kubernetes.client.configuration", "Configuration")
RESTClientObject: Any = _attr("kubernetes.client.rest", "RESTClientObject")
ApiException: type[Exception] = _attr("kubernetes.client.exceptions", "ApiException")
ConfigException: type[Exception] = _attr("kubernetes.config.config_exception", "ConfigException")
load_incluster_config: Callable[..., None] = _attr("kubernetes.config.incluster_config", "load_incluster_config")


def load_kube_config(**kwargs: Any) -> None:
    """`kubernetes.config.load_kube_config`, imported on first use: in-cluster agents never load the
    kubeconfig machinery (requests, oauthlib)."""
    _attr("kubernetes.config.kube_config", "load_kube_config")(**kwargs)


__all__ = ["CLIENT_VERSION", "ApiException", "ConfigException", "Configuration", "LeanImportError",
           "RESTClientObject", "is_deferred", "load_incluster_config", "load_kube_config"]
