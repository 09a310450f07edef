"""Runs queued jobs against the SEAL runtime and hands results to the adapter.

The SQLite job table is the source of truth: a job is claimed with a lease, its
progress is written back, and the embedding and stickers are stored before the
job is marked done, so a crash of this process or of the runtime loses nothing —
the lease expires and the job runs again, using the cached embedding if it got
that far. Delivery is recorded per job id, so a result is sent once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid

import sqlite_utils

from bot.delivery import DeliverySink
from bot.messages import JobView, ProgressUpdate, StickerOut, UserRef
from bot.settings import Settings
from bot.vocabulary import emoji_for_emotion
from seal_runtime.client import RuntimeClient
from seal_runtime.protocol import JobRequest, ProgressEvent, RuntimeJobError
from storage import embeddings, jobs, references, stickers, users

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
RETRY_BASE_SECONDS = 5


class JobWorker:
    def __init__(self, db: sqlite_utils.Database, settings: Settings, client: RuntimeClient,
                 sink: DeliverySink, worker_id: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.sink = sink
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self._model_id: str | None = None
        self.last_timings: dict = {}

    async def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = (await self.client.health())["model_id"]
        return self._model_id

    async def run_forever(self, stop: asyncio.Event, idle_sleep: float = 0.2) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except RuntimeJobError as exc:
                log.warning("runtime unavailable", extra={"error": str(exc)})
                worked = False
                await asyncio.sleep(2)
            if not worked:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=idle_sleep)
                except TimeoutError:
                    pass

    async def run_once(self) -> bool:
        """Claim and run one job; False when the queue is empty."""
        await self.deliver_pending()
        job = jobs.claim_next_job(self.db, self.worker_id, LEASE_SECONDS)
        if job is None:
            return False
        await self.process(job)
        return True

    async def deliver_pending(self) -> None:
        """Finished jobs whose delivery was interrupted (e.g. the bot was killed) go out now."""
        for job in jobs.undelivered_finished_jobs(self.db):
            view = self._view(job)
            if job.state == "done":
                await self._deliver(view, job)
            elif job.state == "failed" and jobs.mark_delivered(self.db, job.id):
                await self.sink.failed(view, _failure_message(job.error))

    def _view(self, job) -> JobView:
        user = users.get_user(self.db, job.user_id)
        return JobView(job.id, UserRef(user.platform, user.platform_user_id, user.display_name or ""),
                       job.user_id, job.chat or {})

    async def process(self, job) -> None:
        view = self._view(job)
        started = time.perf_counter()
        heartbeat = asyncio.create_task(self._heartbeat(job.id))
        try:
            request = await self._build_request(job)
            last_stage = None

            async def on_progress(event: ProgressEvent) -> None:
                nonlocal last_stage
                if event.stage in ("adapting", "generating") and event.stage != last_stage:
                    jobs.set_state(self.db, job.id, event.stage)
                    last_stage = event.stage
                jobs.set_progress(self.db, job.id, dataclasses.asdict(event))
                await self.sink.progress(view, ProgressUpdate(job.id, event.stage, event.step, event.total))

            runtime_started = time.perf_counter()
            result = await self.client.run_job(request, on_progress)
            runtime_s = time.perf_counter() - runtime_started
            out = self._store_result(job, result)
        except RuntimeJobError as exc:
            heartbeat.cancel()
            retry_in = RETRY_BASE_SECONDS * 2 ** job.attempts
            final = jobs.fail_job(self.db, job.id, str(exc), retry_delay=retry_in if exc.retryable else None,
                                  worker_id=self.worker_id)
            log.warning("job attempt failed", extra={"job_id": job.id, "attempt": job.attempts,
                                                     "final": final, "error": str(exc)})
            if final and jobs.mark_delivered(self.db, job.id):
                await self.sink.failed(view, _failure_message(str(exc)))
            return
        finally:
            heartbeat.cancel()
        total_s = time.perf_counter() - started
        self.last_timings = {"total_s": total_s, "runtime_s": runtime_s, "bot_overhead_s": total_s - runtime_s,
                             "adapted": result.adapted, **result.timings}
        log.info("job done", extra={"job_id": job.id, "adapted": result.adapted, "seconds": round(total_s, 3)})
        finished = jobs.get_job(self.db, job.id)
        if finished is not None and finished.state == "done":
            await self._deliver(view, finished, out)

    async def _deliver(self, view: JobView, job, out: list[StickerOut] | None = None) -> None:
        if out is None:
            out = [_sticker_out(s, job) for s in stickers.stickers_for_job(self.db, job.user_id, job.id)]
        if jobs.mark_delivered(self.db, job.id):
            await self.sink.deliver(view, out)

    async def _build_request(self, job) -> JobRequest:
        payload = job.request
        reference = references.get_reference(self.db, job.user_id, payload["reference_id"])
        if reference is None:
            raise RuntimeJobError("the character of this request was deleted", retryable=False)
        model_id = await self.model_id()
        settings_hash = self.settings.adaptation.settings_hash(model_id)
        cached = embeddings.get_embedding(self.db, reference.sha256, model_id, settings_hash)
        count = self.settings.generation.images_per_request
        return JobRequest(
            job_id=job.id,
            reference_png=reference.image,
            prompts=(payload["prompt"],) * count,
            seeds=tuple(payload["seed"] + i for i in range(count)),
            adaptation=dataclasses.asdict(self.settings.adaptation),
            generation=dataclasses.asdict(self.settings.generation),
            mask_png=reference.mask,
            embedding=cached.data if cached else None,
        )

    def _store_result(self, job, result) -> list[StickerOut]:
        """Embedding first, stickers second, job state last: any crash before the end repeats
        the job, and a repeat finds the embedding cached."""
        payload = job.request
        if result.adapted:
            embeddings.put_embedding(self.db, payload["reference_sha256"], result.model_id, result.settings_hash,
                                     result.embedding, meta={"timings": result.timings})
        emoji = emoji_for_emotion(payload["tags"]["emotion"])
        out = []
        for position, png in enumerate(result.images_png):
            # Keyed by (job, position): a job that runs twice replaces, never duplicates.
            record = stickers.save_sticker(self.db, job.user_id, job.id, png, emoji, payload["tags"], position=position)
            out.append(StickerOut(record.id, job.id, png, emoji, payload["description"], payload["tags"]))
        finished = jobs.finish_job(self.db, job.id, {"sticker_ids": [s.sticker_id for s in out],
                                                     "adapted": result.adapted, "timings": result.timings},
                                   worker_id=self.worker_id)
        if not finished:
            # Our lease expired and another worker owns the job now; it will deliver.
            log.warning("lease lost before finishing", extra={"job_id": job.id, "worker": self.worker_id})
        return out

    async def _heartbeat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            jobs.heartbeat(self.db, job_id, self.worker_id, LEASE_SECONDS)


def _sticker_out(record, job) -> StickerOut:
    return StickerOut(record.id, job.id, record.image, record.emoji, job.request.get("description", ""),
                      job.request.get("tags", {}))


def _failure_message(error: str | None) -> str:
    return ("Sorry, I could not make that sticker after several tries. "
            "Please try again later, or with another picture (/setref).")
