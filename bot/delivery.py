"""What an adapter implements so that finished work reaches the user."""

from __future__ import annotations

from typing import Protocol

from bot.messages import JobView, ProgressUpdate, StickerOut


class DeliverySink(Protocol):
    async def progress(self, job: JobView, update: ProgressUpdate) -> None:
        """Show progress; adapters rate-limit their own edits."""

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        """Send the finished sticker(s). Called at most once per job id."""

    async def failed(self, job: JobView, message: str) -> None:
        """Tell the user the job ended without a sticker."""
