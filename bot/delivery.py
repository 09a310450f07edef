"""Finished work reaching the user: what an adapter implements (`DeliverySink`), the sink that
sends each job through the adapter of its user's platform (`RoutingSink`, one worker serving
several adapters), and the worker's delivery half (`JobDelivery`).

Delivery, "exactly once" precisely: see bot/job_worker.py's docstring and
storage/deliveries.py (the claim).
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlite_utils

from bot.messages import JobView, ProgressEvent, StickerOut, UserRef
from bot.sticker_job import StickerJob
from storage import deliveries, jobs, stickers, users
from storage.records import Job, Sticker

log = logging.getLogger(__name__)

# The error code of an attempt whose character was deleted before it ran (jobs.error_code);
# timeouts carry storage.jobs.TIMED_OUT.
REFERENCE_DELETED_CODE = "reference_deleted"


class DeliverySink(Protocol):
    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        """Show progress; adapters rate-limit their own edits."""

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        """Send the finished sticker(s). The worker calls this under the job's delivery claim,
        so one job is sent by one caller at a time and is not sent again once this returned.
        Raise to have the send retried later (a bounded number of times); return normally when
        it was sent, or when trying again would not help. Only a crash between the platform
        accepting it and the worker recording it makes a second call (see bot/job_worker.py)."""

    async def failed(self, job: JobView, message: str) -> None:
        """Tell the user the job ended without a sticker. Same once-rules as `deliver`."""


class RoutingSink:
    """Delivers each job through the adapter of its user's platform."""

    def __init__(self, sinks: dict[str, DeliverySink]) -> None:
        self.sinks = sinks

    def _sink(self, job: JobView) -> DeliverySink:
        try:
            return self.sinks[job.user.platform]
        except KeyError:
            raise LookupError(f"no adapter running for platform {job.user.platform!r}") from None

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        await self._sink(job).progress(job, update)

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        await self._sink(job).deliver(job, stickers)

    async def failed(self, job: JobView, message: str) -> None:
        await self._sink(job).failed(job, message)


class JobDelivery:
    """Hands a finished job's result to the sink under the job's delivery claim: stickers for
    a done job, `failure_message` for a failed one. A send that raises is retried later with
    a backoff, `max_attempts` sends at most; the claim is confirmed only after the sink
    returned. `counters` (the worker's) counts "delivered" and "delivery_errors"."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        sink: DeliverySink,
        worker_id: str,
        *,
        lease_s: float,
        retry_base_s: float,
        retry_max_s: float,
        max_attempts: int,
        counters: dict[str, int],
        platforms: tuple[str, ...] | None = None,
    ) -> None:
        self.db = db
        self.sink = sink
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.max_attempts = max_attempts
        self.counters = counters
        self.platforms = platforms

    async def deliver_pending(self) -> int:
        """Finished jobs whose result was not handed out yet (the process died, a send
        failed and its backoff is over) go out now. Returns how many were sent."""
        sent = 0
        for job in deliveries.undelivered_finished_jobs(self.db, platforms=self.platforms):
            view = job_view(self.db, job)
            if view is not None and await self.deliver(view, job):
                sent += 1
        return sent

    async def deliver(self, view: JobView, job: Job, out: list[StickerOut] | None = None) -> bool:
        """Send under the job's delivery claim; True when this call delivered it."""
        if not deliveries.claim_delivery(self.db, job.id, self.worker_id, self.lease_s):
            return False
        try:
            if job.state == "done":
                if out is None:
                    out = [sticker_out(s, job.request) for s in stickers.stickers_for_job(self.db, job.user_id, job.id)]
                await self.sink.deliver(view, out)
            else:
                await self.sink.failed(view, failure_message(job))
        # Whatever the platform call raised: try again later, a bounded number of times.
        except Exception as exc:  # noqa: BLE001
            self.counters["delivery_errors"] += 1
            retry_in = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, job.delivery_attempts))
            gave_up = deliveries.fail_delivery(
                self.db,
                job.id,
                self.worker_id,
                f"{type(exc).__name__}: {exc}"[:500],
                retry_delay=retry_in,
                max_attempts=self.max_attempts,
            )
            log.warning("delivery failed", extra={"job_id": job.id, "gave_up": gave_up, "error": str(exc)[:300]})
            return False
        # A cancellation while sending leaves the claim to expire: the result is sent again
        # later (the documented at-least-once window), never dropped.
        if not deliveries.confirm_delivery(self.db, job.id, self.worker_id):
            log.warning("delivery claim lost while sending", extra={"job_id": job.id})
        self.counters["delivered"] += 1
        return True


def job_view(db: sqlite_utils.Database, job: Job) -> JobView | None:
    """What the adapter is told about a job; None when its user was forgotten."""
    user = users.get_user(db, job.user_id)
    if user is None:
        return None
    return JobView(
        job.id, UserRef(user.platform, user.platform_user_id, user.display_name or ""), job.user_id, job.chat or {}
    )


def sticker_out(record: Sticker, request: dict) -> StickerOut:
    """A stored sticker as the sink gets it; `request` is its job's payload (a StickerJob)."""
    payload = StickerJob.from_json(request)
    return StickerOut(
        record.id, record.job_id or "", record.image, record.emoji or "", payload.description, payload.tags
    )


def failure_message(job: Job) -> str:
    """What the user reads when a job ends without a sticker: what happened, what to do."""
    what = StickerJob.from_json(job.request).description or "your sticker"
    if job.error_code == REFERENCE_DELETED_CODE:
        return (
            f"I could not make “{what}”: your character was deleted before I got to it. "
            "Send /setref with a picture, then ask again."
        )
    if job.error_code == jobs.TIMED_OUT:
        return (
            f"Sorry, “{what}” took too long {job.attempts} times, so I stopped trying. "
            "Please try again later, maybe with fewer words."
        )
    return (
        f"Sorry, I could not make “{what}” after {job.attempts} tries. Something about this request "
        "keeps failing on my side; please try other words, or another picture with /setref."
    )
