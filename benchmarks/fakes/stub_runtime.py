"""A stand-in for the SEAL runtime: the same HTTP protocol and frames, no model.

It speaks what `seal_runtime/server.py` speaks (`GET /healthz`, `POST /v1/jobs` streaming
progress frames, a concept frame when it "adapted", then one result or error frame) and answers every job with one fixed,
generated RGBA PNG per prompt. Adapter tests and benchmarks use it where the real
runtime would only add seconds of CPU sampling; one test per adapter still runs the
real runtime (`tests/runtime_helpers.running_runtime`).

    async with running_stub_runtime() as stub:
        client = RuntimeClient(stub.url)
        stub.fail_next = 1          # the next job answers a retryable error
        stub.step_delay_s = 0.05    # slow the progress events down
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image, ImageDraw

from seal_runtime.api.config import AdaptationSettings
from seal_runtime.api.frames import CONTENT_TYPE
from seal_runtime.api.protocol import (
    API_VERSION,
    JobRequest,
    JobResult,
    LearnedConcept,
    ProgressEvent,
    RuntimeJobError,
)

MODEL_ID = "stub-model"
STUB_EMBEDDING = b"stub-learned-embeds"


def sticker_png(size: int = 256, color: tuple[int, int, int] = (230, 120, 40)) -> bytes:
    """A sticker-like RGBA picture: a filled circle with an outline on transparency."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    pad = size // 8
    draw.ellipse((pad, pad, size - pad, size - pad), fill=(*color, 255), outline=(20, 20, 20, 255),
                 width=max(2, size // 40))
    eye = size // 12
    for cx in (size * 3 // 8, size * 5 // 8):
        draw.ellipse((cx - eye // 2, size * 3 // 8, cx + eye // 2, size * 3 // 8 + eye), fill=(20, 20, 20, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class StubRuntime:
    """Knobs and a record of what it was asked; `url` is set once it listens."""

    adapt_steps: int = 3
    generate_steps: int = 3
    step_delay_s: float = 0.0
    fail_next: int = 0  # answer this many jobs with a retryable error event
    png: bytes = field(default_factory=sticker_png)
    url: str = ""
    jobs: list[JobRequest] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # jobs whose client went away before the end
    # id() of the requests now in their steps, with the result still to come (a client cut off
    # now loses the job's work; one cut off after the result has it already).
    stepping: set[int] = field(default_factory=set)

    def create_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/healthz", self.health)
        app.router.add_post("/v1/jobs", self.run_job)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "api_version": API_VERSION, "model_id": MODEL_ID,
                                  "device": "stub", "queued": 0, "jobs_done": len(self.jobs)})

    async def run_job(self, request: web.Request) -> web.StreamResponse:
        try:
            job = JobRequest.from_json(await request.json())
        except Exception as exc:
            return web.json_response({"error": f"bad job request: {exc}"}, status=400)
        self.jobs.append(job)
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(request)

        async def send(chunks: list[bytes]) -> None:
            for chunk in chunks:
                await response.write(chunk)

        await send(ProgressEvent(job.job_id, "queued", 1).to_frame())
        if self.fail_next > 0:
            self.fail_next -= 1
            await send(RuntimeJobError("stub runtime: injected failure").to_frame(job.job_id))
            await response.write_eof()
            return response
        await send(ProgressEvent(job.job_id, "started").to_frame())
        adapted = job.embedding is None
        settings_hash = AdaptationSettings.from_dict(job.adaptation).settings_hash(MODEL_ID)
        stages = ([("adapting", self.adapt_steps)] if adapted else []) + [("generating", self.generate_steps)]
        self.stepping.add(id(request))
        try:
            for stage, total in stages:
                for step in range(1, total + 1):
                    if self.step_delay_s:
                        await asyncio.sleep(self.step_delay_s)
                    await send(ProgressEvent(job.job_id, stage, step, total).to_frame())
                if stage == "adapting":
                    await send(LearnedConcept(job.job_id, MODEL_ID, settings_hash, STUB_EMBEDDING).to_frame())
        except (ConnectionError, asyncio.CancelledError):  # the client went away: stop, like the runtime
            self.stopped.append(job.job_id)
            raise
        finally:
            self.stepping.discard(id(request))
        embedding = STUB_EMBEDDING if adapted else job.embedding
        await send(JobResult(job.job_id, MODEL_ID, settings_hash, embedding, tuple(self.png for _ in job.prompts),
                             adapted=adapted, timings={"adapt_s": 0.0, "generate_s": 0.0}).to_frame())
        await response.write_eof()
        return response


@contextlib.asynccontextmanager
async def running_stub_runtime(stub: StubRuntime | None = None):
    """Serve a StubRuntime on a free 127.0.0.1 port for the duration of the block."""
    stub = stub or StubRuntime()
    runner = web.AppRunner(stub.create_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stub.url = f"http://127.0.0.1:{port}"
    try:
        yield stub
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.fakes.stub_runtime --count N`: N stub runtimes in one process
    (they only sleep), for benchmarks that keep them apart from the bot they measure.
    Prints {"urls": [...]} on one line once all listen; serves until SIGTERM."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(prog="stub_runtime")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--adapt-steps", type=int, default=0)
    parser.add_argument("--generate-steps", type=int, default=10)
    parser.add_argument("--step-delay", type=float, default=0.1, help="seconds per step")
    args = parser.parse_args(argv)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with contextlib.AsyncExitStack() as stack:
            stubs = [await stack.enter_async_context(running_stub_runtime(StubRuntime(
                adapt_steps=args.adapt_steps, generate_steps=args.generate_steps, step_delay_s=args.step_delay)))
                for _ in range(args.count)]
            print(json.dumps({"urls": [stub.url for stub in stubs]}), flush=True)
            await stop.wait()

    asyncio.run(serve())
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
