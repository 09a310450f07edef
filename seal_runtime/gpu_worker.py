"""`stickerbot gpu-worker`: takes jobs from Redis (arq) and runs them on the runtime beside it.

One per GPU, next to that GPU's runtime (`stickerbot runtime`); a box with 4 GPUs runs 4
pairs. The worker holds no model and imports no torch: it passes each request to its
runtime through the ordinary `RuntimeClient` and writes what comes back (progress, the
learned concept, the result or an error) to the job's Redis stream, where the bot reads
it (`seal_runtime.api.redis_client`), frame by frame in the runtime's own encoding. Keys
and entries: `seal_runtime.api.redis_jobs`.

What survives what:
- **This worker is SIGKILLed** (or its box loses power): the job stays in arq's queue
  (arq's "pessimistic execution" removes a job only when it ends), and its short "in
  progress" lease, renewed here every few seconds while the job runs, runs out within
  `job_lease_s` (10 s); another worker then runs it again (a new `try`). The bot keeps waiting
  on the same stream, and its SQLite lease and delivery claim deliver the result once.
  A job that keeps killing its workers ends after `max_tries` tries.
- **Its runtime dies or is restarted**: the job in hand ends with a retryable error (the
  bot retries it, counted, with its usual backoff), and this worker takes no job and
  withdraws its registration until the runtime answers `/healthz` again. A job its runtime
  never received (connection refused) goes back to arq's queue at once, for another worker.
- **Redis restarts**: frames wait in here and are written once it is back; arq's loop is
  restarted after a connection error. With AOF on, queued jobs survive the restart; if
  Redis lost them anyway, the bot notices and queues the attempt again from SQLite.
- **The bot gives up on a job** (its timeout, shutdown, a lost lease): it aborts the arq
  job, the task here is cancelled and the HTTP request to the runtime is closed, which
  stops the runtime's work on it.
- **SIGTERM**: no new jobs; the jobs in hand may finish for `grace_s` seconds; past that
  they are cancelled and go back to arq's queue, for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from urllib.parse import urlsplit

from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import Retry, Worker, func
from redis.exceptions import RedisError

from seal_runtime.api import redis_jobs
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import JobRequest, RuntimeJobError

log = logging.getLogger("stickerbot.gpu_worker")

REDIS_ERRORS = (RedisError, ConnectionError, OSError, TimeoutError)


def default_worker_id(runtime_url: str) -> str:
    port = urlsplit(runtime_url).port or 80
    return f"{socket.gethostname()}-{port}-{os.getpid()}"


class FrameWriter:
    """Appends one job's entries to its stream, in order, riding out short Redis outages."""

    def __init__(self, redis: ArqRedis, arq_id: str, attempt_try: int, *, outage_s: float) -> None:
        self.redis = redis
        self.key = redis_jobs.frames_key(arq_id)
        self.attempt_try = attempt_try
        self.outage_s = outage_s

    async def write(self, entry: redis_jobs.Entry) -> None:
        deadline = time.monotonic() + self.outage_s
        while True:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(self.key, entry.fields())
                    pipe.expire(self.key, redis_jobs.LEFTOVER_TTL_S)
                    await pipe.execute()
                return
            except REDIS_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("Redis unavailable; holding a frame", extra={"stream": self.key, "error": str(exc)[:200]})
                await asyncio.sleep(0.5)


class GpuWorker:
    def __init__(
        self,
        redis_url: str,
        runtime_url: str,
        *,
        secret: str | None = None,
        ca_file: str | None = None,
        worker_id: str | None = None,
        slots: int = 1,
        job_timeout_s: float = 1800,
        max_tries: int = 3,
        grace_s: float = 60.0,
        poll_delay_s: float = 0.05,
        redis_outage_s: float = 120.0,
        job_lease_s: float = redis_jobs.JOB_LEASE_S,
    ) -> None:
        self.redis_settings = redis_jobs.redis_settings(redis_url, ca_file)
        self.redis_label = redis_jobs.redact_url(redis_url)
        self.runtime_url = runtime_url
        self.runtime = RuntimeClient(runtime_url, secret=secret, job_timeout_s=job_timeout_s)
        self.worker_id = worker_id or default_worker_id(runtime_url)
        self.slots = max(1, slots)
        self.job_timeout_s = float(job_timeout_s)
        self.max_tries = max(1, max_tries)
        self.grace_s = grace_s
        self.poll_delay_s = poll_delay_s
        self.redis_outage_s = redis_outage_s
        self.job_lease_s = job_lease_s
        self.started_at = time.time()
        self.jobs_done = 0
        self.model_id: str | None = None
        self.runtime_ok = False
        self.stopping = False
        self.registered = asyncio.Event()  # set once this worker is taking jobs
        self.redis: ArqRedis | None = None
        self.arq: Worker | None = None

    # -- the job ------------------------------------------------------------------------------
    async def sticker_job(self, ctx: dict, timeout_s: float) -> str:
        """arq's function: one attempt of one bot job (the request waits in its own key)."""
        assert self.redis is not None
        arq_id, attempt_try = ctx["job_id"], int(ctx["job_try"])
        writer = FrameWriter(self.redis, arq_id, attempt_try, outage_s=self.redis_outage_s)
        lease = asyncio.create_task(self._keep_lease(arq_id))
        try:
            raw = await self.redis.get(redis_jobs.request_key(arq_id))
            if raw is None:  # the bot gave the attempt up (and deleted it) before anyone took it
                return "request gone"
            try:
                request = JobRequest.from_json(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:  # not worth another try anywhere
                error = RuntimeJobError(f"bad job request: {exc}", retryable=False)
                await writer.write(redis_jobs.frame_entry(attempt_try, error.to_frame(arq_id)))
                return "bad request"
            limit = min(float(timeout_s), self.job_timeout_s)
            answered = False  # the runtime sent something: it has the job

            async def forward(message) -> None:  # a ProgressEvent or a LearnedConcept, in its own frame
                nonlocal answered
                if not answered:
                    answered = True
                    await writer.write(redis_jobs.started_entry(attempt_try, self.worker_id))
                await writer.write(redis_jobs.frame_entry(attempt_try, message.to_frame()))

            try:
                async with asyncio.timeout(limit):
                    result = await self.runtime.run_job(request, on_progress=forward, on_concept=forward)
            except TimeoutError:
                error = RuntimeJobError(f"timed out after {limit:.0f} s on GPU worker {self.worker_id}")
                await writer.write(redis_jobs.frame_entry(attempt_try, error.to_frame(request.job_id)))
                return "timed out"
            except RuntimeJobError as exc:
                if exc.retryable:
                    self.runtime_ok = False  # maybe it died: check /healthz before the next job
                if exc.retryable and not answered:
                    # The runtime never got the job (down, restarting): hand it to another worker,
                    # and take none until this runtime answers again. Not the job's fault.
                    await self._withdraw()
                    raise Retry(defer=1) from exc
                await writer.write(redis_jobs.frame_entry(attempt_try, exc.to_frame(request.job_id)))
                return "error"
            await writer.write(redis_jobs.frame_entry(attempt_try, result.to_frame()))
            self.jobs_done += 1
            return "done"
        finally:
            lease.cancel()

    async def _withdraw(self) -> None:
        """Take no more jobs and leave the live workers, until `_watch_runtime` sees the runtime."""
        assert self.redis is not None and self.arq is not None
        self.arq.allow_pick_jobs = False
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.delete(redis_jobs.worker_key(self.worker_id))

    async def _keep_lease(self, arq_id: str) -> None:
        """Hold arq's in-progress key for `job_lease_s` at a time (see the module docstring)."""
        assert self.redis is not None
        key = in_progress_key_prefix + arq_id
        while True:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.redis.pexpire(key, int(self.job_lease_s * 1000))
            await asyncio.sleep(self.job_lease_s / 4)

    # -- the process --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        self.redis = await self._connect(stop)
        if self.redis is None:
            return 0
        self.arq = Worker(
            functions=[
                func(
                    self.sticker_job,
                    name=redis_jobs.FUNCTION,
                    timeout=self.job_timeout_s + 60,
                    max_tries=self.max_tries,
                )
            ],
            redis_pool=self.redis,
            queue_name=redis_jobs.QUEUE_NAME,
            max_jobs=self.slots,
            poll_delay=self.poll_delay_s,
            allow_abort_jobs=True,
            handle_signals=False,
            job_serializer=redis_jobs.serialize_job,
            job_deserializer=redis_jobs.deserialize_job,
            keep_result=600,
            health_check_interval=60,
            log_results=False,
        )
        self.arq.allow_pick_jobs = False  # until the runtime answers
        # arq holds a picked job's in-progress key for the longest job timeout + 10 s; hold it for
        # the short lease instead, renewed while the job runs (`_keep_lease`). A job whose start
        # failed half-way (Redis went away between arq's pick and its run) is then free again
        # within the lease, not after half an hour.
        self.arq.in_progress_timeout_s = self.job_lease_s
        watch = asyncio.create_task(self._watch_runtime(stop), name="runtime-watch")
        loop = asyncio.create_task(self._arq_loop(stop), name="arq-loop")
        log.info(
            "gpu worker started",
            extra={
                "worker": self.worker_id,
                "redis": self.redis_label,
                "runtime": self.runtime_url,
                "slots": self.slots,
            },
        )
        try:
            await stop.wait()
        finally:
            await self._shutdown(watch, loop)
        return 0

    async def _connect(self, stop: asyncio.Event) -> ArqRedis | None:
        while not stop.is_set():
            try:
                return await create_pool(
                    self.redis_settings,
                    job_serializer=redis_jobs.serialize_job,
                    job_deserializer=redis_jobs.deserialize_job,
                    default_queue_name=redis_jobs.QUEUE_NAME,
                )
            except REDIS_ERRORS as exc:
                log.warning("Redis not reachable yet", extra={"redis": self.redis_label, "error": str(exc)[:200]})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2.0)
        return None

    async def _arq_loop(self, stop: asyncio.Event) -> None:
        """arq's polling loop ends on a Redis connection error: start it again (the jobs in
        hand go on meanwhile)."""
        assert self.arq is not None
        while not stop.is_set():
            try:
                await self.arq.main()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                log.warning("lost Redis; polling again shortly", extra={"error": str(exc)[:200]})
                await asyncio.sleep(1.0)

    async def _watch_runtime(self, stop: asyncio.Event) -> None:
        """Take jobs only while the runtime answers; keep the registration fresh meanwhile."""
        assert self.redis is not None and self.arq is not None
        while not stop.is_set():
            try:
                health = await self.runtime.health()
            except RuntimeJobError as exc:
                if self.runtime_ok or not self.registered.is_set():
                    log.warning(
                        "runtime not answering; taking no jobs",
                        extra={"runtime": self.runtime_url, "error": str(exc)[:200]},
                    )
                self.runtime_ok = False
            else:
                self.runtime_ok = True
                self.model_id = str(health.get("model_id"))
            self.arq.allow_pick_jobs = self.runtime_ok and not self.stopping
            try:
                if self.arq.allow_pick_jobs:
                    await self.redis.set(
                        redis_jobs.worker_key(self.worker_id),
                        self._info().to_json(),
                        px=int(redis_jobs.WORKER_TTL_S * 1000),
                    )
                    if not self.registered.is_set():
                        log.info("registered; taking jobs", extra={"worker": self.worker_id, "model_id": self.model_id})
                    self.registered.set()
                else:
                    await self.redis.delete(redis_jobs.worker_key(self.worker_id))
            except REDIS_ERRORS as exc:
                log.warning("registration not renewed", extra={"error": str(exc)[:200]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=redis_jobs.WORKER_RENEW_S)

    def _info(self) -> redis_jobs.WorkerInfo:
        parts = urlsplit(self.runtime_url)
        return redis_jobs.WorkerInfo(
            self.worker_id,
            self.model_id or "",
            self.slots,
            f"{parts.scheme}://{parts.hostname}:{parts.port}",
            self.started_at,
            self.jobs_done,
        )

    async def _shutdown(self, watch: asyncio.Task, loop: asyncio.Task) -> None:
        assert self.redis is not None and self.arq is not None
        self.stopping = True
        self.arq.allow_pick_jobs = False
        watch.cancel()
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.delete(redis_jobs.worker_key(self.worker_id))
        running = [t for t in self.arq.tasks.values() if not t.done()]
        if running:
            log.info("finishing the jobs in hand", extra={"jobs": len(running), "grace_s": self.grace_s})
            await asyncio.wait(running, timeout=self.grace_s)
        # Cancels what is left: arq puts those jobs back in its queue, for another worker.
        self.arq.handle_sig(signal.SIGTERM)
        loop.cancel()
        await asyncio.gather(watch, loop, *self.arq.tasks.values(), return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self.redis.close(close_connection_pool=True)
        await self.runtime.close()
        log.info("gpu worker stopped", extra={"worker": self.worker_id, "jobs_done": self.jobs_done})


def serve(worker: GpuWorker) -> int:
    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await worker.run(stop)

    return asyncio.run(main())
