"""The Kafka client libraries entered bare in the collector's child process.

Importing any module of a package runs the package's `__init__` first. kafka-python's imports its
consumer, producer and coordinator (41 modules), confluent-kafka's its serializing clients and,
with them, asyncio: ~3 MB of Python objects and ~6 MB of the child's memory (measured), for code
the collector never runs (it uses kafka-python's admin client and protocol classes, and
librdkafka's clients).

`enter_bare` puts a package in `sys.modules` without running its `__init__`, so its submodules
import on their own. A name asked of the package itself (`from confluent_kafka import
TopicPartition`) is taken from the submodules its `__init__` takes it from (`REEXPORTED_FROM`;
`tests/unit/test_bare_packages.py` checks they are the very objects a full import binds). Any
other name runs the `__init__` in full, once, and is answered from it: code asking for more than
the collector does still gets what it asks for, and only the memory is lost.

Only the child process enters them bare: it runs nothing but the collector. The monitor's own
process (and a collector run in it, `collection.isolate_process: false`) imports them as usual.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading

log = logging.getLogger(__name__)

# Per package, submodules whose names its `__init__` re-exports: a name is taken from the first
# of them that defines it.
REEXPORTED_FROM: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka.admin",),
    "confluent_kafka": ("confluent_kafka._model", "confluent_kafka.cimpl", "confluent_kafka.error"),
}

_MISSING = object()


def enter_bare(package: str, reexported_from: tuple[str, ...] = ()) -> bool:
    """Put `package` in `sys.modules` without running its `__init__` (see the module's doc).
    False, and nothing done, when it is already imported or is not an installed package."""
    if package in sys.modules:
        return False
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        return False
    module = importlib.util.module_from_spec(spec)
    lock = threading.RLock()

    def __getattr__(name: str):
        if not name.startswith("__"):
            for source in reexported_from:
                value = getattr(importlib.import_module(source), name, _MISSING)
                if value is not _MISSING:
                    setattr(module, name, value)
                    return value
            # a submodule not imported yet (`from package import submodule`)
            if importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
        with lock:
            if module.__dict__.get("__getattr__") is __getattr__:
                log.debug("%s: its __init__ runs in full, for %r", package, name)
                del module.__dict__["__getattr__"]
                spec.loader.exec_module(module)
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    module.__getattr__ = __getattr__
    sys.modules[package] = module
    return True


def enter_client_libraries_bare() -> None:
    """Both client libraries, as the collector's child process starts (before any import of them)."""
    for package, sources in REEXPORTED_FROM.items():
        enter_bare(package, sources)

