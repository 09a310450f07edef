"""Runs queued jobs against the SEAL runtime and hands results to the adapter.

The SQLite job table is the source of truth (storage/jobs.py). One attempt:

  claim (lease, attempt counted) -> runtime streams progress -> store the embedding the
  moment adaptation ends (before generation) -> store the stickers, then mark done -> claim the delivery -> send -> confirm it.

What survives what:
- **The runtime dies** (SIGKILL, out of memory, a driver reset): the stream breaks, the
  attempt fails and the job is queued again after a backoff (retry_base_s * 2^(n-1),
  capped at retry_max_s). If the runtime never received the job (connection refused
  while it restarts) the attempt is not counted: a runtime outage does not use up jobs.
- **A job keeps killing the runtime** (a poison job): each death counts, and after
  `job_attempts` tries the job ends "failed" and the user is told so, once.
- **This process dies**: the job's lease stops being renewed; the job is claimed again
  (by this worker when it restarts with the same id, at once, see `recover`; by any
  other worker when the lease expires). An embedding stored before the crash is found
  in the cache, so adaptation is not repeated; stickers are keyed by (job, position),
  so a repeat replaces rather than duplicates.
- **Hung work**: an attempt longer than `job_timeout_s` is abandoned and retried; a
  lease lost to someone else (the timeout sweep, /forget) stops the attempt too.
- **SIGTERM**: `run_forever` returns after the job in hand finishes; if the caller
  cancels it first, the job goes back to the queue without costing an attempt.

Delivery — "exactly once", precisely: the result is sent by whoever holds the job's
delivery claim (its own lease) and recorded as delivered only after the adapter's send
returned. A send that raises is retried later (bounded by `delivery_attempts`). So a
result is never lost, and no two workers send it at the same time. The one window that
remains is a crash *after* the platform accepted the message and *before* the
confirmation commit (a few milliseconds): then the result is sent again on restart.
Telegram's Bot API has no idempotency key to close that window; Discord's message
`nonce` with `enforce_nonce` can (an adapter may derive it from `JobView.job_id`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING

import sqlite_utils

from bot.delivery import REFERENCE_DELETED_CODE, DeliverySink, JobDelivery, job_view
from bot.messages import JobView, StickerOut
from bot.pack_delivery import PackAssembler
from bot.schema.vocabulary import emoji_for_emotion
from bot.settings import Settings
from bot.sticker_job import StickerJob
from bot.worker_identity import WorkerIdentity, claim_worker_id
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import (
    BAD_CACHED_CONCEPT,
    JobRequest,
    LearnedConcept,
    ProgressEvent,
    RuntimeJobError,
)
from storage import embeddings, jobs, references, stickers
from storage.records import Job

if TYPE_CHECKING:
    from seal_runtime.api.redis_client import RedisRuntimeClient

log = logging.getLogger(__name__)

REFERENCE_DELETED = "the character of this request was deleted"
RUNTIME_DOWN_PAUSE_S = 2.0


class JobRefused(RuntimeJobError):
    """The job cannot be done at all (not worth a retry)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message, retryable=False, code=code)


class JobWorker:
    """One worker: one job at a time. Give each concurrently running worker its own
    `worker_id` (stable across restarts of the same process, so `recover` can reclaim its
    jobs at once) and, when several run in one process, its own database connection."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        settings: Settings,
        client: RuntimeClient | RedisRuntimeClient,
        sink: DeliverySink,
        worker_id: str | None = None,
        *,
        platforms: tuple[str, ...] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.platforms = platforms
        limits = settings.limits
        self.lease_s = float(limits.job_lease_s)
        self.delivery_lease_s = 5 * self.lease_s  # a send may wait out platform rate limits
        self.job_timeout_s = float(limits.job_timeout_s)
        self.retry_base_s = float(limits.retry_base_s)
        self.retry_max_s = float(limits.retry_max_s)
        self.delivery_attempts = int(limits.delivery_attempts)
        self._model_id: str | None = None
        self._model_profile = "builtin"
        self._runtime_ok = True
        self._recovered = False
        self.identity: WorkerIdentity | None = None
        self._told_id_lost = False
        self.last_timings: dict = {}
        self.counters = {"done": 0, "retried": 0, "failed": 0, "released": 0, "delivered": 0, "delivery_errors": 0}
        # A pack's jobs reach the adapter as one finished pack (bot/pack_delivery.py).
        assembler = PackAssembler(db, sink, worker_id=self.worker_id, lease_s=self.delivery_lease_s)
        self.delivery = JobDelivery(
            db,
            assembler,
            self.worker_id,
            lease_s=self.delivery_lease_s,
            retry_base_s=self.retry_base_s,
            retry_max_s=self.retry_max_s,
            max_attempts=self.delivery_attempts,
            counters=self.counters,
            platforms=platforms,
        )

    @property
    def sink(self) -> DeliverySink:
        """Where progress and results go (the delivery half holds it; tests swap it)."""
        return self.delivery.sink

    @sink.setter
    def sink(self, value: DeliverySink) -> None:
        self.delivery.sink = value

    # -- loop --------------------------------------------------------------------------------
    def recover(self) -> dict[str, int]:
        """Once at start: claim this worker id (`WorkerIdClash` if another running process
        uses it, bot/worker_identity.py), then expire what a previous life of it still holds."""
        self.identity = claim_worker_id(self.db, self.worker_id, stale_after_s=self.lease_s)
        self._recovered = True
        held = jobs.expire_leases(self.db, self.worker_id)
        if any(held.values()):
            log.warning("recovering jobs of a previous run of this worker", extra={"worker": self.worker_id, **held})
        return held

    async def run_forever(self, stop: asyncio.Event, idle_sleep: float = 0.2) -> None:
        """Work until `stop` is set; the job in hand is finished first. Cancelled instead,
        the job in hand goes back to the queue (see `process`)."""
        if not self._recovered:
            self.recover()
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except RuntimeJobError as exc:
                log.warning("runtime unavailable", extra={"error": str(exc)})
                worked = False
                await _sleep_unless(stop, RUNTIME_DOWN_PAUSE_S)
            except Exception as exc:  # a locked or full database, a bug: log it, keep the loop alive
                log.exception("worker loop error", extra={"error": str(exc)[:300]})
                worked = False
                await _sleep_unless(stop, 1.0)
            if not worked:
                await _sleep_unless(stop, idle_sleep)
        if self.identity is not None:  # a clean stop frees the id at once (a crash: see worker_identity)
            self.identity.release()

    async def run_once(self) -> bool:
        """Deliver what is pending, then claim and run one job; False when none was ready."""
        if not self._recovered:
            self.recover()
        if self.identity is not None and not self.identity.refresh() and not self._told_id_lost:
            self._told_id_lost = True
            log.error("another process took over this worker id", extra={"worker": self.worker_id})
        await self.deliver_pending()
        if not self._runtime_ok:
            await self.model_id()  # raises RuntimeJobError while it is down: claim nothing
        job = jobs.claim_next_job(self.db, self.worker_id, self.lease_s, platforms=self.platforms)
        if job is None:
            return False
        await self.process(job)
        return True

    async def model_id(self) -> str:
        if self._model_id is None or not self._runtime_ok:
            try:
                health = await self.client.health()
            except RuntimeJobError:
                self._runtime_ok = False
                raise
            self._model_id = health["model_id"]
            # Which adaptation defaults the runtime's model takes (api/config.ADAPTATION_PROFILES).
            self._model_profile = str(health.get("adaptation_profile") or "builtin")
            self._runtime_ok = True
        return self._model_id

    # -- one job -----------------------------------------------------------------------------
    async def process(self, job: Job) -> None:
        view = self._view(job)
        if view is None:  # the user was forgotten between the claim and now
            return
        started = time.perf_counter()
        accepted = asyncio.Event()  # the runtime sent its first event: it has the job
        work = asyncio.create_task(self._run_on_runtime(job, view, accepted))
        watch = asyncio.create_task(self._keep_lease(job.id))
        try:
            done, _ = await asyncio.wait({work, watch}, timeout=self.job_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Shutdown (or the caller gave up): the job goes back, this attempt not counted.
            work.cancel()
            watch.cancel()
            if jobs.release_job(self.db, job.id, self.worker_id):
                log.info("job requeued on shutdown", extra={"job_id": job.id})
                self.counters["released"] += 1
            raise
        finally:
            watch.cancel()
        if work not in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            if watch in done:
                log.warning("lease lost; dropping this attempt", extra={"job_id": job.id, "worker": self.worker_id})
                return
            await self._attempt_failed(
                job,
                view,
                RuntimeJobError(f"timed out after {self.job_timeout_s:.0f} s", code=jobs.TIMED_OUT),
                accepted=True,
            )
            return
        try:
            result, runtime_s = work.result()
        except RuntimeJobError as exc:
            await self._attempt_failed(job, view, exc, accepted=accepted.is_set())
            return
        except Exception as exc:  # a bug on our side counts as a failed attempt, not a stuck job
            log.exception("job attempt crashed", extra={"job_id": job.id})
            await self._attempt_failed(
                job, view, RuntimeJobError(f"internal error: {type(exc).__name__}: {exc}"), accepted=True
            )
            return
        out, finished = self._store_result(job, result)
        total_s = time.perf_counter() - started
        self.last_timings = {
            "total_s": total_s,
            "runtime_s": runtime_s,
            "bot_overhead_s": total_s - runtime_s,
            "adapted": result.adapted,
            **result.timings,
        }
        if not finished:
            # Our lease expired and the job was taken over (or forgotten): not ours to deliver.
            log.warning("lease lost before finishing", extra={"job_id": job.id, "worker": self.worker_id})
            return
        self.counters["done"] += 1
        log.info(
            "job done",
            extra={"job_id": job.id, "adapted": result.adapted, "seconds": round(total_s, 3), "attempt": job.attempts},
        )
        finished_job = jobs.get_job(self.db, job.id)
        if finished_job is not None:
            await self._deliver(view, finished_job, out)

    async def _run_on_runtime(self, job: Job, view: JobView, accepted: asyncio.Event):
        request, cache_key = await self._build_request(job)
        last_stage = None

        async def on_progress(event: ProgressEvent) -> None:
            nonlocal last_stage
            accepted.set()
            if event.stage in ("adapting", "generating") and event.stage != last_stage:
                jobs.set_state(self.db, job.id, event.stage, worker_id=self.worker_id)
                last_stage = event.stage
            jobs.set_progress(self.db, job.id, dataclasses.asdict(event), worker_id=self.worker_id)
            try:
                await self.sink.progress(view, ProgressEvent(job.id, event.stage, event.step, event.total))
            # Progress is cosmetic: never fail the job over it, whatever went wrong.
            except Exception as exc:  # noqa: BLE001
                log.info("progress not shown", extra={"job_id": job.id, "error": str(exc)[:200]})

        async def on_concept(concept: LearnedConcept) -> None:
            # Stored the moment adaptation ends: whatever happens to the rest of this
            # attempt, the next one finds the concept cached and does not adapt again.
            self._store_concept(job, concept)

        started = time.perf_counter()
        try:
            try:
                result = await self.client.run_job(request, on_progress, on_concept)
            except RuntimeJobError as exc:
                if exc.code != BAD_CACHED_CONCEPT or request.embedding is None:
                    raise
                # The cached concept cannot be used (corrupt, or made for other shapes): drop
                # it and learn the character again, once, instead of failing every job of
                # this user for as long as the entry lives.
                log.warning(
                    "cached embedding unusable; dropped, learning it again",
                    extra={"job_id": job.id, "error": str(exc)[:300]},
                )
                embeddings.delete_embedding(self.db, *cache_key)
                request = dataclasses.replace(request, embedding=None, adapter_weights=None)
                result = await self.client.run_job(request, on_progress, on_concept)
        except RuntimeJobError:
            if not accepted.is_set():
                self._runtime_ok = False
            raise
        self._runtime_ok = True
        return result, time.perf_counter() - started

    async def _attempt_failed(self, job: Job, view: JobView, exc: RuntimeJobError, *, accepted: bool) -> None:
        if not accepted and exc.retryable and not isinstance(exc, JobRefused):
            # The runtime never got the job (it is down or restarting): not the job's fault.
            self._runtime_ok = False
            self._model_id = None
            jobs.release_job(self.db, job.id, self.worker_id, delay=RUNTIME_DOWN_PAUSE_S)
            self.counters["released"] += 1
            log.warning("runtime unreachable; job requeued", extra={"job_id": job.id, "error": str(exc)[:300]})
            return
        # The runtime may have died with the job: ask /healthz before the next claim (so no
        # other job is claimed just to find it down), and re-read its model when it is back.
        self._runtime_ok = False
        self._model_id = None
        retry_in = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, job.attempts - 1))
        final = jobs.fail_job(
            self.db,
            job.id,
            str(exc),
            retry_delay=retry_in if exc.retryable else None,
            worker_id=self.worker_id,
            code=exc.code,
        )
        log.warning(
            "job attempt failed",
            extra={
                "job_id": job.id,
                "attempt": job.attempts,
                "final": final,
                "retry_in_s": None if final else retry_in,
                "error": str(exc)[:300],
            },
        )
        if not final:
            self.counters["retried"] += 1
            return
        self.counters["failed"] += 1
        failed = jobs.get_job(self.db, job.id)
        if failed is not None and failed.state == "failed":
            await self._deliver(view, failed)

    # -- delivery (bot/delivery.py) ----------------------------------------------------------
    async def deliver_pending(self) -> int:
        """Finished jobs whose result was not handed out yet go out now; how many were sent."""
        return await self.delivery.deliver_pending()

    async def _deliver(self, view: JobView, job: Job, out: list[StickerOut] | None = None) -> bool:
        return await self.delivery.deliver(view, job, out)

    # -- helpers -----------------------------------------------------------------------------
    def _view(self, job: Job) -> JobView | None:
        return job_view(self.db, job)

    async def _keep_lease(self, job_id: str) -> None:
        """Renew the lease; returns when it was lost (taken over, timed out, forgotten)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not jobs.heartbeat(self.db, job_id, self.worker_id, self.lease_s):
                    return
            except sqlite3.OperationalError as exc:  # locked for longer than the busy timeout: try again
                log.warning("heartbeat not written", extra={"job_id": job_id, "error": str(exc)})

    async def _build_request(self, job: Job) -> tuple[JobRequest, tuple[str, str, str]]:
        """The request for the runtime and its concept's cache key (reference, model, settings)."""
        payload = StickerJob.from_json(job.request)
        reference = (
            None
            if payload.reference_id is None
            else references.get_reference(self.db, job.user_id, payload.reference_id)
        )
        if reference is None:
            raise JobRefused(REFERENCE_DELETED, code=REFERENCE_DELETED_CODE)
        model_id = await self.model_id()
        # The request carries resolved settings: the runtime runs exactly what was hashed.
        adaptation = self.settings.adaptation.resolved(self._model_profile)
        settings_hash = adaptation.settings_hash(model_id)
        cached = embeddings.get_embedding(self.db, reference.sha256, model_id, settings_hash)
        count = self.settings.generation.images_per_request
        request = JobRequest(
            job_id=job.id,
            reference_png=reference.image,
            prompts=(payload.prompt,) * count,
            seeds=tuple(payload.seed + i for i in range(count)),
            adaptation=dataclasses.asdict(adaptation),
            generation=dataclasses.asdict(self.settings.generation),
            mask_png=reference.mask,
            embedding=cached.data if cached else None,
            adapter_weights=cached.adapter_weights if cached else None,
            attempt=job.attempts,
            background=runtime_background(payload.tags),
        )
        return request, (reference.sha256, model_id, settings_hash)

    def _store_concept(self, job: Job, concept: LearnedConcept) -> bool:
        """Cache a freshly learned concept, unless the job was forgotten meanwhile (checked
        and written in one transaction, so /forget can never be undone by a late answer)."""
        payload = StickerJob.from_json(job.request)
        stored = embeddings.put_embedding_for_job(
            self.db,
            job.id,
            payload.reference_sha256,
            concept.model_id,
            concept.settings_hash,
            concept.embedding,
            meta={"timings": concept.timings},
            adapter_weights=concept.adapter_weights,
        )
        if not stored:
            log.info("job forgotten while adapting; its embedding is not kept", extra={"job_id": job.id})
        elif concept.mask_png is not None and concept.mask_source and payload.reference_id is not None:
            # The runtime made the subject mask (the bot never does): cache it with the reference.
            references.update_mask(self.db, job.user_id, payload.reference_id, concept.mask_png, concept.mask_source)
        return stored

    def _store_result(self, job: Job, result) -> tuple[list[StickerOut], bool]:
        """Stickers first, job state last (the embedding was stored when it arrived, see
        `_store_concept`): any crash before the end repeats the job, and a repeat finds the
        embedding cached. Returns (stickers, finished by us)."""
        payload = StickerJob.from_json(job.request)
        if jobs.get_job(self.db, job.id) is None:  # forgotten while it ran: store nothing more
            return [], False
        emoji = emoji_for_emotion(payload.tags["emotion"])
        out = []
        for position, png in enumerate(result.images_png):
            # Keyed by (job, position): a job that runs twice replaces, never duplicates.
            record = stickers.save_sticker(self.db, job.user_id, job.id, png, emoji, payload.tags, position=position)
            out.append(StickerOut(record.id, job.id, png, emoji, payload.description, payload.tags))
        finished = jobs.finish_job(
            self.db,
            job.id,
            {"sticker_ids": [s.sticker_id for s in out], "adapted": result.adapted, "timings": result.timings},
            worker_id=self.worker_id,
        )
        return out, finished


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


def runtime_background(tags: dict | None) -> str:
    """The runtime's cut-out hint from a request's tags: a plain background is cut out, a
    named scene kept; a job stored without tags lets the runtime decide ("auto")."""
    if not tags or not tags.get("background"):
        return "auto"
    return "plain" if tags["background"] == "plain" else "scene"
