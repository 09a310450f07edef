"""What an adapter implements so that finished work reaches the user, and the sink that sends
each job through the adapter of its user's platform (one worker serving several adapters)."""

from __future__ import annotations

from typing import Protocol

from bot.messages import JobView, ProgressEvent, StickerOut


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
