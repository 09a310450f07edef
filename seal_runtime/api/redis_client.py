"""The bot's side of scale-out: a runtime client that sends jobs to GPU workers through Redis.

`RedisRuntimeClient` has RuntimeClient's interface (`health`, `run_job`, `close`), so the
bot's JobWorker runs unchanged: it claims a job from SQLite by the fair rule, and this
client enqueues that attempt with arq and follows the job's frames stream until the
result or an error comes back. The bot runs one JobWorker per free GPU slot
(`capacity`), so SQLite's round-robin between users decides the order across all GPUs,
and arq's queue holds at most the jobs that are already on their way to a GPU.

How each way of failing ends (`run_job` raises RuntimeJobError; the JobWorker decides):
- Redis unreachable when enqueueing, or no GPU worker alive for `no_worker_grace_s` while
  the job waits: the runtime "never got the job" (no progress came), so the attempt is
  given back without being counted.
- The GPU worker died mid-job: nothing is raised. arq runs the job again on another
  worker (see `seal_runtime.gpu_worker`) and this client follows the new try.
- arq gave up (the job killed `max_tries` workers): not retryable, the user is told.
- The job vanished from Redis (restarted without its AOF): retryable; SQLite still has it.
- The caller cancels (timeout, a lost lease, shutdown): the arq job is aborted, which
  stops the runtime's work on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque

from arq.connections import ArqRedis, create_pool
from arq.constants import abort_jobs_ss
from arq.jobs import Job, JobStatus
from redis.exceptions import RedisError

from seal_runtime.api import redis_jobs
from seal_runtime.api.frames import FramingError
from seal_runtime.api.protocol import (
    TRANSPORT,
    JobAnswer,
    JobRequest,
    JobResult,
    OnConcept,
    OnProgress,
    RuntimeJobError,
)

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, ConnectionError, OSError, TimeoutError)
MAX_REDOS = 5


class RedisRuntimeClient:
    def __init__(
        self,
        redis_url: str,
        *,
        ca_file: str | None = None,
        job_timeout_s: float = 3600,
        no_worker_grace_s: float = 30.0,
        redis_outage_s: float = 120.0,
        block_ms: int = 1000,
    ) -> None:
        self.redis_settings = redis_jobs.redis_settings(redis_url, ca_file)
        self.base_url = redis_jobs.redact_url(redis_url)  # what logs and /healthz show
        self.job_timeout_s = float(job_timeout_s)
        self.no_worker_grace_s = no_worker_grace_s
        self.redis_outage_s = redis_outage_s
        self.block_ms = block_ms
        self._redis: ArqRedis | None = None
        self._connecting = asyncio.Lock()
        self.pickup_s: deque[float] = deque(maxlen=1000)  # enqueue -> a GPU worker started it (latest jobs)
        self.counters: Counter = Counter()

    async def connection(self) -> ArqRedis:
        async with self._connecting:
            if self._redis is None:
                try:
                    self._redis = await create_pool(
                        self.redis_settings,
                        job_serializer=redis_jobs.serialize_job,
                        job_deserializer=redis_jobs.deserialize_job,
                        default_queue_name=redis_jobs.QUEUE_NAME,
                    )
                except REDIS_ERRORS as exc:
                    raise RuntimeJobError(f"Redis at {self.base_url} is not reachable: {_why(exc)}") from exc
            return self._redis

    async def close(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._redis.close(close_connection_pool=True)
            self._redis = None

    # -- the GPU side, as seen from here ----------------------------------------------------
    async def workers(self) -> list[redis_jobs.WorkerInfo]:
        redis = await self.connection()
        try:
            return await redis_jobs.live_workers(redis)
        except REDIS_ERRORS as exc:
            raise RuntimeJobError(f"Redis at {self.base_url} is not reachable: {_why(exc)}") from exc

    async def capacity(self) -> int:
        """How many jobs the live GPU workers take at once; RuntimeJobError while Redis is down."""
        return sum(w.slots for w in await self.workers())

    async def health(self) -> dict:
        """Like the runtime's /healthz, for the whole GPU side. Raises RuntimeJobError while
        no GPU worker is alive. All workers must serve the same model (cached concepts are
        keyed by it); if they disagree, the most common one is reported and a warning logged."""
        workers = await self.workers()
        if not workers:
            raise RuntimeJobError(f"no GPU worker is registered in Redis at {self.base_url}")
        models = Counter(w.model_id for w in workers)
        if len(models) > 1:
            log.warning("GPU workers serve different models", extra={"models": dict(models)})
        return {
            "status": "ok",
            "model_id": models.most_common(1)[0][0],
            "device": "redis",
            "workers": len(workers),
            "slots": sum(w.slots for w in workers),
        }

    # -- one job --------------------------------------------------------------------------------
    async def run_job(
        self, request: JobRequest, on_progress: OnProgress | None = None, on_concept: OnConcept | None = None
    ) -> JobResult:
        """RuntimeClient.run_job through Redis: the same callbacks, called from the frames the
        GPU worker passes on (the concept as soon as adaptation ends, before generation)."""
        redis = await self.connection()
        job = await self._enqueue(redis, request)
        enqueued = time.monotonic()
        try:
            return await self._follow(redis, job, request, JobAnswer(request, on_progress, on_concept), enqueued)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(redis, job.job_id))
            raise
        except RuntimeJobError:
            await asyncio.shield(self._abandon(redis, job.job_id))
            raise
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await redis.delete(redis_jobs.request_key(job.job_id), redis_jobs.frames_key(job.job_id))

    async def _enqueue(self, redis: ArqRedis, request: JobRequest) -> Job:
        """Enqueue this attempt once: if it is already queued or running (an earlier call's
        reply was lost), follow that one; if it already ended, run it again under a new id."""
        body = json.dumps(request.to_json()).encode()
        ttl = int(self.job_timeout_s + redis_jobs.LEFTOVER_TTL_S)
        try:
            for redo in range(MAX_REDOS):
                arq_id = redis_jobs.arq_job_id(request.job_id, request.attempt, redo)
                await redis.set(redis_jobs.request_key(arq_id), body, ex=ttl, nx=True)
                job = await redis.enqueue_job(
                    redis_jobs.FUNCTION, self.job_timeout_s, _job_id=arq_id, _expires=self.job_timeout_s
                )
                if job is not None:
                    self.counters["enqueued"] += 1
                    return job
                existing = Job(
                    arq_id, redis, _queue_name=redis_jobs.QUEUE_NAME, _deserializer=redis_jobs.deserialize_job
                )
                if await existing.status() in (JobStatus.queued, JobStatus.deferred, JobStatus.in_progress):
                    self.counters["reattached"] += 1
                    return existing
        except REDIS_ERRORS as exc:
            raise RuntimeJobError(
                f"could not queue job {request.job_id} in Redis at {self.base_url}: {_why(exc)}"
            ) from exc
        raise RuntimeJobError(f"job {request.job_id} attempt {request.attempt} ended {MAX_REDOS} times in Redis")

    async def _follow(
        self, redis: ArqRedis, job: Job, request: JobRequest, answer: JobAnswer, enqueued: float
    ) -> JobResult:
        key = redis_jobs.frames_key(job.job_id)
        last_id = "0-0"
        current_try = 0
        outage_since: float | None = None
        no_worker_since: float | None = None
        while True:
            try:
                batches = await redis.xread({key: last_id}, count=100, block=self.block_ms)
                status = None if batches else await job.status()
                if status == JobStatus.complete:  # its last entries may have come after the read
                    batches = await redis.xread({key: last_id}, count=1000)
                workers = (
                    await redis_jobs.live_workers(redis) if status in (JobStatus.queued, JobStatus.deferred) else None
                )
            except REDIS_ERRORS as exc:
                outage_since = outage_since or time.monotonic()
                if time.monotonic() - outage_since > self.redis_outage_s:
                    raise RuntimeJobError(
                        f"lost Redis at {self.base_url} for {self.redis_outage_s:.0f} s during "
                        f"job {request.job_id}: {_why(exc)}"
                    ) from exc
                await asyncio.sleep(0.5)
                continue
            outage_since = None
            for _, entries in batches or ():
                for entry_id, fields in entries:
                    last_id = entry_id
                    entry = redis_jobs.Entry.from_fields(fields)
                    if entry.attempt_try < current_try:
                        continue  # a worker presumed dead still talking: its successor counts
                    if entry.kind == "started":
                        if current_try == 0:
                            self.pickup_s.append(time.monotonic() - enqueued)
                        if entry.attempt_try > max(1, current_try):  # arq ran it again: a worker was lost
                            self.counters["redone"] += 1
                            log.warning(
                                "GPU worker lost; job taken over",
                                extra={
                                    "job_id": request.job_id,
                                    "try": entry.attempt_try,
                                    "worker": json.loads(entry.data).get("worker"),
                                },
                            )
                        current_try = entry.attempt_try
                    else:
                        try:
                            frame = await redis_jobs.frame_of(entry)
                        except (FramingError, ValueError, KeyError) as exc:
                            raise RuntimeJobError(
                                f"a garbled {entry.kind!r} entry for job {request.job_id}: {exc}", code=TRANSPORT
                            ) from exc
                        result = await answer.take(frame)
                        if result is not None:
                            return result
            if status == JobStatus.complete:
                raise await self._ended_without_answer(job, request)
            if status == JobStatus.not_found:
                raise RuntimeJobError(f"job {request.job_id} vanished from Redis (restarted without its AOF?)")
            if workers is not None:
                if workers:
                    no_worker_since = None
                else:
                    no_worker_since = no_worker_since or time.monotonic()
                    if time.monotonic() - no_worker_since > self.no_worker_grace_s:
                        raise RuntimeJobError(
                            f"no GPU worker took job {request.job_id} for "
                            f"{self.no_worker_grace_s:.0f} s: none is running"
                        )

    async def _ended_without_answer(self, job: Job, request: JobRequest) -> RuntimeJobError:
        """arq's record of a job that ended with no result or error frame: arq gave up, the
        job function failed (a bug: not retried, or it would loop), or it was cut short."""
        info = await job.result_info()
        why = str(info.result) if info is not None else "no record"
        if "retries exceeded" in why:
            return RuntimeJobError(
                f"job {request.job_id} stopped every GPU worker that ran it ({why})", retryable=False
            )
        if info is not None and not info.success and not why.startswith(("CancelledError", "TimeoutError")):
            return RuntimeJobError(f"the GPU worker failed on job {request.job_id}: {why}", retryable=False)
        return RuntimeJobError(f"GPU worker ended job {request.job_id} without an answer: {why}")

    async def _abandon(self, redis: ArqRedis, arq_id: str) -> None:
        """Nobody waits for this job any more: abort it if it runs, drop it if it waits."""
        with contextlib.suppress(*REDIS_ERRORS):
            job = Job(arq_id, redis, _queue_name=redis_jobs.QUEUE_NAME, _deserializer=redis_jobs.deserialize_job)
            if await job.status() != JobStatus.complete:
                await redis.zadd(abort_jobs_ss, {arq_id: int(time.time() * 1000)})
            await redis.delete(redis_jobs.request_key(arq_id))
            self.counters["abandoned"] += 1


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "WRONGPASS" in text or "NOAUTH" in text or "invalid username-password" in text:
        return f"{text} (check the user and password in general.redis_url)"
    if "certificate" in text.lower() or "SSL" in text:
        return f"{text} (check rediss:// and general.redis_ca_file)"
    return text
