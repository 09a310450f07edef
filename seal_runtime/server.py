"""The runtime process: an aiohttp server that owns the model and the GPU.

Routes:
  GET  /healthz   -> {"status": "ok", "model_id", "device", "queued"}
  POST /v1/jobs   -> NDJSON stream of {"event": "progress", ...} lines, then one
                     {"event": "result", ...} or {"event": "error", ...} line.

GPU work runs in a single worker thread: jobs queue in arrival order and the event
loop keeps answering health checks while a job runs.
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
from dataclasses import asdict

from aiohttp import web

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.api.protocol import API_VERSION, SECRET_HEADER, JobRequest, ProgressEvent, RuntimeJobError

log = logging.getLogger("seal_runtime.server")

ENGINE = web.AppKey("engine", object)
SETTINGS = web.AppKey("settings", RuntimeSettings)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
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


@web.middleware
async def require_secret(request: web.Request, handler):
    secret = request.app[SETTINGS].shared_secret
    if secret and request.path != "/healthz":
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    state = request.app[STATE]
    return web.json_response({
        "status": "ok",
        "api_version": API_VERSION,
        "model_id": engine.backbone.model_id,
        "device": str(engine.backbone.device),
        "queued": state["pending"],
        "jobs_done": state["done"],
    })


async def run_job(request: web.Request) -> web.StreamResponse:
    try:
        job = JobRequest.from_json(await request.json())
    except Exception as exc:
        return web.json_response({"error": f"bad job request: {exc}"}, status=400)

    app = request.app
    state = app[STATE]
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(event: ProgressEvent) -> None:  # called from the worker thread
        loop.call_soon_threadsafe(events.put_nowait, {"event": "progress", **asdict(event)})

    def work():
        emit(ProgressEvent(job.job_id, "started"))
        return app[ENGINE].run(job, emit)

    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    state["pending"] += 1
    await write_line(response, {"event": "progress", **asdict(ProgressEvent(job.job_id, "queued", state["pending"]))})
    started = time.perf_counter()
    future = loop.run_in_executor(app[EXECUTOR], work)
    try:
        while not future.done() or not events.empty():
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait({getter, future}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await write_line(response, getter.result())
            else:
                getter.cancel()
        result = future.result()
        log.info("job done", extra={"job_id": job.job_id, "adapted": result.adapted,
                                    "seconds": round(time.perf_counter() - started, 3)})
        await write_line(response, {"event": "result", **result.to_json()})
        state["done"] += 1
    except RuntimeJobError as exc:
        log.warning("job refused", extra={"job_id": job.job_id, "error": str(exc)})
        await write_line(response, {"event": "error", "message": str(exc), "retryable": exc.retryable})
    except Exception as exc:  # the job failed on the model: report it, keep serving
        log.exception("job failed", extra={"job_id": job.job_id})
        await write_line(response, {"event": "error", "message": f"{type(exc).__name__}: {exc}", "retryable": True})
    finally:
        state["pending"] -= 1
    await response.write_eof()
    return response


async def write_line(response: web.StreamResponse, payload: dict) -> None:
    await response.write((json.dumps(payload) + "\n").encode())


def create_app(settings: RuntimeSettings, engine_factory: Callable[[RuntimeSettings], object] | None = None) -> web.Application:
    """Application factory; the engine (model) is built once at start-up."""
    app = web.Application(middlewares=[require_secret], client_max_size=64 * 1024 * 1024)
    app[SETTINGS] = settings
    app[STATE] = {"pending": 0, "done": 0}

    async def model_ctx(app: web.Application):
        app[EXECUTOR] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seal-gpu")
        factory = engine_factory or build_engine
        app[ENGINE] = await asyncio.get_running_loop().run_in_executor(app[EXECUTOR], factory, settings)
        yield
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(model_ctx)
    app.router.add_get("/healthz", health)
    app.router.add_post("/v1/jobs", run_job)
    return app


def build_engine(settings: RuntimeSettings):
    from seal_runtime.engine import StickerEngine
    from seal_runtime.models.loader import load_backbone
    from seal_runtime.imaging.sam_loader import load_segmenter

    backbone = load_backbone(settings)
    return StickerEngine(backbone, sam_predictor=load_segmenter(settings, backbone.device),
                         segment_stickers=settings.segment_stickers)


def serve(settings: RuntimeSettings) -> None:
    check_bind(settings)
    log.info("runtime starting", extra={"host": settings.host, "port": settings.port, "model": settings.model})
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)
