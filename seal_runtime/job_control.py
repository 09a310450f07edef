"""The line between one running job and the server that owns its connection.

The engine runs in the GPU thread; the server's event loop owns the HTTP response. The
engine reports through `emit` (progress) and `concept` (the learned concept, the moment
adaptation ends) and calls `check()` at every step: once the client has gone away (it
disconnected, its timeout gave up, the job was cancelled), `check()` raises JobCancelled
and the job stops at that step, freeing the GPU for the next one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from seal_runtime.api.protocol import LearnedConcept, ProgressEvent


class JobCancelled(Exception):
    """Nobody is waiting for this job any more."""


class JobControl:
    def __init__(self, job_id: str, emit: Callable[[ProgressEvent], None] = lambda event: None,
                 concept: Callable[[LearnedConcept], None] = lambda concept: None) -> None:
        self.job_id = job_id
        self._emit = emit
        self._concept = concept
        self._cancelled = threading.Event()
        self.reason = ""
        self.created = time.monotonic()
        self.started: float | None = None  # when the GPU thread took it
        self.stage = "queued"

    def cancel(self, reason: str) -> None:
        if not self._cancelled.is_set():
            self.reason = reason
            self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled(self.reason or "cancelled")

    def emit(self, event: ProgressEvent) -> None:
        self.check()
        self.stage = event.stage
        self._emit(event)

    def concept(self, concept: LearnedConcept) -> None:
        self._concept(concept)
