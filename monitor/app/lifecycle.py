"""The lifecycle every long-running part shares: `start()` and `stop()`. The composition root
starts its services in order and stops them in reverse, as Burrow's coordinators do."""
from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class Services:
    """The services started so far; `stop_all()` stops them last first, each once."""

    def __init__(self) -> None:
        self._running: list[Service] = []

    def start(self, service: Service) -> None:
        service.start()
        self._running.append(service)

    def stop_all(self) -> None:
        while self._running:
            service = self._running.pop()
            try:
                service.stop()
            except Exception:  # the others must still stop
                log.exception("stopping %s failed", type(service).__name__)
