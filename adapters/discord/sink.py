"""Where finished work reaches Discord: progress edits, the sticker with its buttons, failures.

A /mysticker is answered at once ("Queued at position 2…"); that response is then edited
with progress and finally replaced by the sticker itself, a WebP attachment that Discord
shows inline, with the buttons under it. The interaction that made the response is kept
in memory (`track`); its token is valid for 15 minutes. When it is gone (a restart) or
expired (a long queue), the sticker is posted to the channel instead, mentioning the
member; the job's `chat` dict names the channel. The response carries a Cancel button
(adapters/discord/buttons.py) until the sticker, a failure or "Cancelled." replaces it.

Progress edits are paced per job (`progress_interval_s`, and Discord allows a webhook token
about five requests in five seconds) and never raise. `deliver` and `failed` raise on
transient failures, so the JobWorker retries them a bounded number of times; a channel the
bot may not write to is given up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from dataclasses import dataclass, field

import discord
import sqlite_utils

from adapters.discord.buttons import sticker_view
from adapters.discord.gallery import files_of, gallery_pages, gallery_text, pack_view
from bot.i18n import _
from bot.messages import JobView, ProgressEvent, StickerOut, progress_text
from bot.sticker_library import StickerLibrary
from bot.sticker_spec import to_discord_message

log = logging.getLogger(__name__)

FINISHED_MEMORY = 4096
ANSWER_WAIT_S = 10.0


@dataclass
class _Live:
    interaction: discord.Interaction
    text: str | None = None  # the latest text not yet shown
    shown: str | None = None
    last_edit: float = -1e9
    flush: asyncio.Task | None = field(default=None, repr=False)
    gone: bool = False  # the response was deleted or the token expired: stop editing
    cancelled: bool = False  # /cancel: no more progress edits
    # Set once the command's response exists: a fast job may finish before it does.
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def usable(self) -> bool:
        """Whether the response can be edited (waiting briefly for it to exist)."""
        try:
            await asyncio.wait_for(self.answered.wait(), ANSWER_WAIT_S)
        except TimeoutError:
            self.gone = True
        return not self.gone and not self.interaction.is_expired()


class DiscordSink:
    def __init__(self, client: discord.Client, db: sqlite_utils.Database, *, progress_interval_s: float = 2.0,
                 button_timeout_s: float = 3600.0) -> None:
        self.client = client
        self.stickers = StickerLibrary(db)
        self.interval = progress_interval_s
        self.button_timeout_s = button_timeout_s
        self._live: dict[str, _Live] = {}
        self._recent: dict[str, _Live] = {}  # finished jobs whose delivery may still wait for the answer

    # -- the progress message ----------------------------------------------------------------
    def track(self, job_id: str, interaction: discord.Interaction) -> None:
        """`interaction` is answering the command for `job_id`; its response will show the
        progress. Call before answering, then `answered(job_id, ok)` once it is sent."""
        self._live[job_id] = _Live(interaction)

    def answered(self, job_id: str, ok: bool) -> None:
        live = self._live.get(job_id) or self._recent.get(job_id)
        if live is not None:
            live.gone = live.gone or not ok
            live.answered.set()

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        live = self._live.get(job.job_id)
        if live is None or live.gone:
            return
        text = progress_text(update)
        if text == live.shown:
            return
        live.text = text
        if live.flush is None or live.flush.done():
            wait = live.last_edit + self.interval - time.monotonic()
            live.flush = asyncio.get_running_loop().create_task(self._flush(live, max(0.0, wait)))

    async def _flush(self, live: _Live, wait: float) -> None:
        if wait > 0:
            await asyncio.sleep(wait)
        if not await live.usable() or live.cancelled:
            return
        text, live.text = live.text, None
        if text is None:
            return
        try:
            await live.interaction.edit_original_response(content=text)
            live.shown = text
        except discord.HTTPException as exc:
            if _answer_gone(exc):
                live.gone = True  # dismissed, deleted or expired: the sticker still comes
            else:
                log.warning("progress edit failed", extra={"status": exc.status, "error": exc.text})
        finally:
            # The interval counts from the end of this edit: a slow request never brings the
            # next one closer than `interval` to it at Discord's end.
            live.last_edit = time.monotonic()

    async def forget_progress(self, request_id: str) -> _Live | None:
        """The request was cancelled: no more progress for it, and a progress edit already on
        its way lands before this returns (so "Cancelled." is the last word, not overwritten)."""
        live = self._live.pop(request_id, None)
        if live is None:
            return None
        live.cancelled = True
        if live.flush is not None and not live.flush.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(live.flush), ANSWER_WAIT_S)
        self._recent[request_id] = live
        return live

    async def cancelled(self, request_id: str) -> None:
        """/cancel took the request back: its response says "Cancelled.", without the button."""
        live = await self.forget_progress(request_id)
        if live is None or not await live.usable():
            return
        try:
            await live.interaction.edit_original_response(content=_("Cancelled."), view=None)
        except discord.HTTPException as exc:
            log.info("cancelled response not edited", extra={"status": exc.status, "error": exc.text})

    def _finish(self, job_id: str) -> _Live | None:
        live = self._live.pop(job_id, None)
        if live is None:
            return None
        if live.flush is not None:
            live.flush.cancel()
        self._recent[job_id] = live
        while len(self._recent) > FINISHED_MEMORY:
            self._recent.pop(next(iter(self._recent)))
        return live

    # -- results -----------------------------------------------------------------------------
    async def deliver(self, job: JobView, out: list[StickerOut]) -> None:
        chat = _checked_chat(job)
        if job.pack is not None:
            await self._deliver_gallery(job, chat, out)
            return
        live = self._finish(job.job_id)
        already_sent = self.stickers.sent_ids(job.user_id, job.job_id)
        for index, sticker in enumerate(out):
            if sticker.sticker_id in already_sent:
                continue  # a retry after a later sticker of this job failed: not again
            webp = await asyncio.to_thread(to_discord_message, sticker.png)
            content = f"{sticker.emoji} {sticker.description}"
            view = sticker_view(sticker.sticker_id, int(job.user.platform_user_id), self.button_timeout_s)
            if index == 0 and live is not None and await live.usable():
                try:
                    message = await live.interaction.edit_original_response(
                        content=content, attachments=[_file(webp)], view=view)
                    self.stickers.record_sent(job.user_id, sticker.sticker_id, message.id)
                    continue
                except discord.HTTPException as exc:
                    if not _answer_gone(exc):
                        raise
                    # the "Queued…" response is gone: post the sticker in the channel
            posted = await self._post(job, chat, f"<@{job.user.platform_user_id}> {content}", view=view,
                                      file=_file(webp))
            if posted is not None:
                self.stickers.record_sent(job.user_id, sticker.sticker_id, posted.id)

    async def _deliver_gallery(self, job: JobView, chat: dict, out: list[StickerOut]) -> None:
        """A finished /makepack: its stickers in gallery messages (adapters/discord/gallery.py),
        the first one replacing the command's response when it can still be edited."""
        assert job.pack is not None
        live = self._finish(job.job_id)
        owner = int(job.user.platform_user_id)
        in_guild = bool(chat.get("guild_id"))
        pages = gallery_pages(out)
        number = 1
        for index, page in enumerate(pages):
            webps = [await asyncio.to_thread(to_discord_message, s.png) for s in page]
            content = gallery_text(owner, job.pack, index, len(pages), in_guild)
            # In DMs no menu; the first page replaces the response, and its Cancel button with it.
            view = pack_view(owner, page, number) if in_guild else (None if index == 0 else discord.utils.MISSING)
            number += len(page)
            if index == 0 and live is not None and await live.usable():
                try:
                    await live.interaction.edit_original_response(content=content, attachments=files_of(webps),
                                                                  view=view)
                    continue
                except discord.HTTPException as exc:
                    if not _answer_gone(exc):
                        raise
            await self._post(job, chat, content, files=files_of(webps),
                             view=discord.utils.MISSING if view is None else view)

    async def failed(self, job: JobView, message: str) -> None:
        chat = _checked_chat(job)
        live = self._finish(job.job_id)
        if live is not None and await live.usable():
            try:
                await live.interaction.edit_original_response(content=message, view=None)
                return
            except discord.HTTPException as exc:
                if not _answer_gone(exc):
                    raise
        await self._post(job, chat, f"<@{job.user.platform_user_id}> {message}")

    async def _post(self, job: JobView, chat: dict, content: str, **kwargs) -> discord.Message | None:
        """Post in the job's channel (a DM channel for DMs), mentioning only its member.
        No access (removed from the server, DMs closed) is final; anything else raises."""
        channel = self.client.get_partial_messageable(int(chat["channel_id"]),
                                                      guild_id=int(chat["guild_id"]) if chat.get("guild_id") else None)
        mention = discord.AllowedMentions(everyone=False, roles=False,
                                          users=[discord.Object(int(job.user.platform_user_id))])
        try:
            return await channel.send(content, allowed_mentions=mention, **kwargs)
        except (discord.Forbidden, discord.NotFound) as exc:
            log.warning("sticker not deliverable", extra={"job_id": job.job_id, "status": exc.status,
                                                           "error": exc.text})
            return None


def _answer_gone(exc: discord.HTTPException) -> bool:
    """The command's response can no longer be edited: deleted (404), not ours (403), or its
    interaction token expired (401, Discord code 50027 "Invalid Webhook Token")."""
    return exc.status in (401, 403, 404) or exc.code in (50027, 10008, 10015)


def _file(webp: bytes) -> discord.File:
    return discord.File(io.BytesIO(webp), filename="sticker.webp")


def _checked_chat(job: JobView) -> dict:
    if job.user.platform != "discord" or not job.chat.get("channel_id"):
        raise LookupError(f"job {job.job_id} is not for a Discord channel ({job.user.platform})")
    return job.chat
