"""The real runtime server (seal_runtime.server.create_app) in this process, with an engine
whose behaviour a test writes: for transport, cancellation and queueing tests that need
results of any size or timing without a model."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from aiohttp import web

from seal_runtime.api.config import AdaptationSettings, RuntimeSettings
from seal_runtime.api.protocol import (
    JobRequest,
    JobResult,
    LearnedConcept,
    ProgressEvent,
)
from seal_runtime.job_control import JobControl
from seal_runtime.server import create_app

MODEL_ID = "scripted-model"


def finished(request: JobRequest, control: JobControl, *, images: tuple[bytes, ...] | None = None,
             embedding: bytes = b"learned-embeds", adapter_weights: bytes | None = None,
             steps: int = 2) -> JobResult:
    """What a normal job does: adapt when nothing is cached (reporting the concept), then generate."""
    settings_hash = AdaptationSettings.from_dict(request.adaptation).settings_hash(MODEL_ID)
    adapted = request.embedding is None
    if adapted:
        for step in range(1, steps + 1):
            control.emit(ProgressEvent(request.job_id, "adapting", step, steps))
        control.concept(LearnedConcept(request.job_id, MODEL_ID, settings_hash, embedding, adapter_weights))
    for step in range(1, steps + 1):
        control.emit(ProgressEvent(request.job_id, "generating", step, steps))
    return JobResult(request.job_id, MODEL_ID, settings_hash, embedding if adapted else request.embedding,
                     images or tuple(b"png-%d" % i for i in range(len(request.prompts))), adapted=adapted,
                     adapter_weights=adapter_weights if adapted else request.adapter_weights)


class ScriptedEngine:
    """`script(request, control) -> JobResult` runs in the server's GPU thread."""

    model_id = MODEL_ID
    device = "scripted"
    adaptation_profile = "builtin"

    def __init__(self, script: Callable[[JobRequest, JobControl], JobResult] = finished) -> None:
        self.script = script
        self.requests: list[JobRequest] = []
        self.lock = threading.Lock()

    def run(self, request: JobRequest, control: JobControl):
        with self.lock:
            self.requests.append(request)
        return self.script(request, control)

    def finish(self, request: JobRequest, generated: JobResult) -> JobResult:
        return generated


@contextlib.asynccontextmanager
async def serving(engine: ScriptedEngine, settings: RuntimeSettings | None = None):
    """Yields the base URL of the real runtime app serving `engine` on 127.0.0.1."""
    runner = web.AppRunner(create_app(settings or RuntimeSettings(), lambda _: engine), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
