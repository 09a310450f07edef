"""The runtime process: an aiohttp server that owns the model and the GPU.

Routes:
  GET  /healthz   -> {"status": "ok", "model_id", "device", "adaptation_profile", "queued",
                      "running": {"job_id", "stage", "age_s"} or null, ...}
  POST /v1/jobs   -> a stream of frames (seal_runtime.api.frames): progress events, a
                     "concept" frame as soon as adaptation ends, then one "result" frame
                     (the images as binary parts) or one "error" frame.

GPU work runs in one GPU thread fed by a GpuQueue (generation-only jobs first); the CPU
part of a job (cut-out, PNG encoding) runs in a CPU thread so the GPU thread moves on.
The event loop keeps answering health checks while a job runs. A client that goes away
(disconnect, its timeout) stops its job at the next step.

Bad requests are answered 400 (413 for a body over the size limit) with
`{"error", "retryable": false}`; they are never worth a retry.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.api.frames import CONTENT_TYPE
from seal_runtime.api.protocol import (
    API_VERSION,
    SECRET_HEADER,
    BadJobRequest,
    JobRequest,
    ProgressEvent,
    RuntimeJobError,
)
from seal_runtime.gpu_queue import ADAPTATION, GENERATION_ONLY, GpuQueue
from seal_runtime.job_control import JobCancelled, JobControl

log = logging.getLogger("seal_runtime.server")

MAX_BODY_BYTES = 64 * 1024 * 1024
# How often a job's handler checks that its client is still connected while it waits.
DISCONNECT_POLL_S = 0.5
ENGINE = web.AppKey("engine", object)
SETTINGS = web.AppKey("settings", RuntimeSettings)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
CPU_EXECUTOR = web.AppKey("cpu_executor", ThreadPoolExecutor)
QUEUE = web.AppKey("queue", GpuQueue)
STATE = web.AppKey("state", dict)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: RuntimeSettings) -> None:
    """Refuse to listen beyond this machine without a shared secret."""
    if not is_loopback(settings.host) and not settings.shared_secret:
        raise SystemExit(
            f"refusing to bind the runtime to {settings.host}: set runtime.shared_secret "
            "(STICKERBOT_RUNTIME__SHARED_SECRET) to serve beyond 127.0.0.1"
        )


def secret_matches(given: str, secret: str) -> bool:
    """Constant-time comparison. aiohttp decodes header bytes that are not UTF-8 with
    surrogate escapes; they are compared as the bytes that were sent, never a 500."""
    try:
        sent = given.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(sent, secret.encode("utf-8"))


def authorised(secret: str | None, path: str, given: str) -> bool:
    """May this request go on? With a secret configured, everything but /healthz needs it."""
    return not secret or path == "/healthz" or secret_matches(given, secret)


@web.middleware
async def require_secret(request: web.Request, handler):
    if not authorised(request.app[SETTINGS].shared_secret, request.path, request.headers.get(SECRET_HEADER, "")):
        return web.json_response({"error": "unauthorized", "retryable": False}, status=401)
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    state = request.app[STATE]
    running = state["running"]
    return web.json_response({
        "status": "ok",
        "api_version": API_VERSION,
        "model_id": engine.model_id,
        "device": engine.device,
        "adaptation_profile": engine.adaptation_profile,
        "queued": len(request.app[QUEUE]),
        "running": None if running is None else {
            "job_id": running.job_id, "stage": running.stage,
            "age_s": round(time.monotonic() - (running.started or running.created), 3)},
        "jobs_done": state["done"],
    })


def bad_request(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message, "retryable": False}, status=status)


async def read_job(request: web.Request) -> JobRequest:
    body = await request.read()  # HTTPRequestEntityTooLarge past client_max_size
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadJobRequest(f"the body is not JSON: {exc}") from None
    return JobRequest.from_json(data)


async def run_job(request: web.Request) -> web.StreamResponse:
    try:
        job = await read_job(request)
    except web.HTTPRequestEntityTooLarge:
        return bad_request(f"the job request is larger than {MAX_BODY_BYTES // 2**20} MiB", status=413)
    except BadJobRequest as exc:
        return bad_request(f"bad job request: {exc}")

    app = request.app
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue[list[bytes]] = asyncio.Queue()
    # Called from the GPU thread: frames are written by this handler, on the event loop.
    control = JobControl(
        job.job_id,
        emit=lambda event: loop.call_soon_threadsafe(outbox.put_nowait, event.to_frame()),
        concept=lambda concept: loop.call_soon_threadsafe(outbox.put_nowait, concept.to_frame()),
    )
    engine = app[ENGINE]

    def gpu_part():
        control.started = time.monotonic()
        app[STATE]["running"] = control
        try:
            control.emit(ProgressEvent(job.job_id, "started"))
            return engine.run(job, control)
        finally:
            app[STATE]["running"] = None

    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    await response.prepare(request)
    started = time.perf_counter()
    priority = GENERATION_ONLY if job.embedding is not None else ADAPTATION
    future = app[QUEUE].submit(gpu_part, priority)
    try:
        await write(response, ProgressEvent(job.job_id, "queued", app[QUEUE].position(future)).to_frame())
        generated = await relay(request, response, future, outbox, control)
        result = await loop.run_in_executor(app[CPU_EXECUTOR], engine.finish, job, generated)
        while not outbox.empty():
            await write(response, outbox.get_nowait())
        await write(response, result.to_frame())
        app[STATE]["done"] += 1
        log.info("job done", extra={"job_id": job.job_id, "adapted": result.adapted,
                                    "seconds": round(time.perf_counter() - started, 3)})
    except (ConnectionError, JobCancelled) as exc:
        # The client went away (it disconnected or gave up waiting): stop the job, quietly.
        control.cancel(f"client went away: {type(exc).__name__}")
        future.cancel()
        log.info("job stopped: client went away", extra={"job_id": job.job_id})
        return response
    except RuntimeJobError as exc:
        log.warning("job refused", extra={"job_id": job.job_id, "error": str(exc), "code": exc.code})
        await write_quietly(response, exc.to_frame(job.job_id))
    except Exception as exc:  # the job failed on the model: report it, keep serving
        log.exception("job failed", extra={"job_id": job.job_id})
        await write_quietly(response, RuntimeJobError(f"{type(exc).__name__}: {exc}").to_frame(job.job_id))
    finally:
        if not future.done():
            control.cancel("the request handler ended")
            future.cancel()
    try:
        await response.write_eof()
    except ConnectionError:
        pass
    return response


async def relay(request: web.Request, response: web.StreamResponse, future: asyncio.Future,
                outbox: asyncio.Queue, control: JobControl):
    """Write the job's frames as they come until its GPU part is done; notice a client
    that went away even while nothing is written (the job still waits in the queue)."""
    while True:
        while not outbox.empty():
            await write(response, outbox.get_nowait())
        if future.done():
            return future.result()
        getter = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait({getter, future}, timeout=DISCONNECT_POLL_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await write(response, getter.result())
        else:
            getter.cancel()
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")


async def write(response: web.StreamResponse, chunks: list[bytes]) -> None:
    for chunk in chunks:
        await response.write(chunk)


async def write_quietly(response: web.StreamResponse, chunks: list[bytes]) -> None:
    try:
        await write(response, chunks)
    except ConnectionError:
        log.info("client went away before the error could be sent")


def create_app(settings: RuntimeSettings, engine_factory: Callable[[RuntimeSettings], object] | None = None) -> web.Application:
    """Application factory; the engine (model) is built once at start-up."""
    app = web.Application(middlewares=[require_secret], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[STATE] = {"done": 0, "running": None}

    async def model_ctx(app: web.Application):
        app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seal-gpu")
        app[CPU_EXECUTOR] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="seal-cpu")
        factory = engine_factory or build_engine
        app[ENGINE] = await asyncio.get_running_loop().run_in_executor(app[EXECUTOR], factory, settings)
        app[QUEUE] = GpuQueue(app[EXECUTOR])
        dispatcher = asyncio.ensure_future(app[QUEUE].serve())
        yield
        dispatcher.cancel()
        for executor in (app[EXECUTOR], app[CPU_EXECUTOR]):
            executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(model_ctx)
    app.router.add_get("/healthz", health)
    app.router.add_post("/v1/jobs", run_job)
    return app


def build_engine(settings: RuntimeSettings):
    from seal_runtime.engine import StickerEngine
    from seal_runtime.imaging.sam_loader import load_segmenter
    from seal_runtime.models.loader import load_backbone

    backbone = load_backbone(settings)
    engine = StickerEngine(backbone, sam_predictor=load_segmenter(settings, backbone.device),
                           segment_stickers=settings.segment_stickers)
    if backbone.device.type == "cuda":  # first kernels, autotuning, compilation: before the first user
        log.info("runtime warmed up", extra={"seconds": round(engine.warm_up(), 2)})
    return engine


def serve(settings: RuntimeSettings) -> None:
    check_bind(settings)
    log.info("runtime starting", extra={"host": settings.host, "port": settings.port, "model": settings.model})
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)
