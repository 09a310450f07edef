"""Where finished work reaches Telegram: progress edits, the sticker with its buttons, failures.

The job's `chat` dict (written by the /mysticker handler) says where: `chat_id`, the
command's `message_id` (the sticker replies to it, so in a group the right person gets
it) and the forum `thread_id`. The "Queued…" reply that becomes the progress message is
sent after the job exists, so its id is handed over with `track()` and kept in memory:
after a restart the progress message is simply no longer edited, the sticker still
arrives.

Errors: progress edits never raise. `deliver` and `failed` raise on transient failures
(PTB's rate limiter has already waited out and retried 429s by then), so the JobWorker
retries the delivery later, a bounded number of times; a chat the bot can no longer write
to is given up at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import sqlite_utils
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, ReplyParameters
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes, JobQueue

from adapters.telegram.packs import TelegramPacks, telegram_webp
from bot.errors import UserError
from bot.messages import JobView, ProgressEvent, StickerOut, progress_text
from bot.sticker_library import StickerLibrary

log = logging.getLogger(__name__)

# callback_data prefixes of the buttons under a sticker (callback_data is at most 64 bytes)
ADD_TO_PACK, AGAIN, DELETE = "pk", "ag", "rm"
FINISHED_MEMORY = 4096


def sticker_keyboard(sticker_id: int, owner: str | int) -> InlineKeyboardMarkup:
    """The buttons under a sticker; `owner` (their Telegram user id) is the only one they obey."""
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("➕ Add to pack", callback_data=f"{ADD_TO_PACK}:{sticker_id}:{owner}"),
        InlineKeyboardButton("🔁 Again", callback_data=f"{AGAIN}:{sticker_id}:{owner}"),
        InlineKeyboardButton("🗑 Delete", callback_data=f"{DELETE}:{sticker_id}:{owner}"),
    ]])


@dataclass
class _Progress:
    chat_id: int
    message_id: int | None = None
    text: str | None = None  # the latest text not yet shown
    shown: str | None = None


class TelegramSink:
    def __init__(self, bot: Bot, db: sqlite_utils.Database, *, job_queue: JobQueue | None,
                 progress_interval_s: float = 2.0, packs: TelegramPacks | None = None) -> None:
        self.bot = bot
        self.stickers = StickerLibrary(db)
        self.packs = packs  # where a finished /makepack goes: the user's sticker set
        self.job_queue = job_queue
        self.interval = progress_interval_s
        self._progress: dict[str, _Progress] = {}
        self._last_edit: dict[int, float] = {}  # chat id -> monotonic time of the last edit
        self._flush_scheduled: set[int] = set()
        self._finished: dict[str, None] = {}  # ordered set of recently finished job ids

    # -- the progress message ----------------------------------------------------------------
    def track(self, job_id: str, chat_id: int, message_id: int) -> None:
        """The handler's "Queued…" reply for `job_id` becomes its progress message."""
        if job_id in self._finished:
            asyncio.get_running_loop().create_task(self._delete(chat_id, message_id))
            return
        entry = self._progress.setdefault(job_id, _Progress(chat_id))
        entry.message_id = message_id
        if entry.text is not None:
            self._request_edit(chat_id)

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        if not _ours(job) or job.job_id in self._finished:
            return
        chat_id = job.chat["chat_id"]
        entry = self._progress.setdefault(job.job_id, _Progress(chat_id))
        text = progress_text(update)
        if text == entry.shown:
            return
        entry.text = text
        if entry.message_id is not None:
            self._request_edit(chat_id)

    def _request_edit(self, chat_id: int) -> None:
        """Edit now if this chat's last edit is ≥ interval ago, else once when it is."""
        if chat_id in self._flush_scheduled:
            return
        wait = self._last_edit.get(chat_id, -1e9) + self.interval - time.monotonic()
        self._flush_scheduled.add(chat_id)
        if wait <= 0:
            asyncio.get_running_loop().create_task(self._flush(chat_id))
        elif self.job_queue is not None:
            self.job_queue.run_once(self._flush_job, when=wait, data=chat_id, name=f"progress-{chat_id}")
        else:
            asyncio.get_running_loop().call_later(wait, lambda: asyncio.ensure_future(self._flush(chat_id)))

    async def _flush_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._flush(context.job.data)

    async def _flush(self, chat_id: int) -> None:
        """One edit: the oldest job of this chat with a text not yet shown. If another job
        of the chat is still waiting, it gets the next turn, an interval later."""
        self._flush_scheduled.discard(chat_id)
        if len(self._last_edit) > FINISHED_MEMORY:  # forget chats that have been quiet a while
            cutoff = time.monotonic() - self.interval
            self._last_edit = {c: t for c, t in self._last_edit.items() if t > cutoff}
        waiting = [e for e in self._progress.values()
                   if e.chat_id == chat_id and e.message_id is not None and e.text is not None]
        if not waiting:
            return
        entry = waiting[0]
        text, entry.text = entry.text, None
        self._last_edit[chat_id] = time.monotonic()
        try:
            await self.bot.edit_message_text(text, chat_id=chat_id, message_id=entry.message_id)
            entry.shown = text
        except BadRequest as exc:
            if "not found" in exc.message.lower():
                entry.message_id = None  # the user deleted it: stop editing, the sticker still comes
            elif "not modified" not in exc.message.lower():
                log.info("progress edit refused", extra={"chat_id": chat_id, "error": exc.message})
        except TelegramError as exc:
            log.warning("progress edit failed", extra={"chat_id": chat_id, "error": str(exc)})
        if len(waiting) > 1:
            self._request_edit(chat_id)

    def _finish(self, job_id: str) -> _Progress | None:
        self._finished[job_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.pop(next(iter(self._finished)))
        return self._progress.pop(job_id, None)

    # -- results -----------------------------------------------------------------------------
    async def deliver(self, job: JobView, out: list[StickerOut]) -> None:
        """Send the sticker(s). Transient failures (network, Telegram still answering 429 after
        the rate limiter's retries) raise, so the JobWorker sends again later; a chat we can no
        longer write to (bot blocked, chat gone) is logged and given up at once."""
        chat = _checked_chat(job)
        if job.pack is not None:
            await self._deliver_pack(job, chat, out)
            return
        entry = self._finish(job.job_id)
        if entry is not None and entry.message_id is not None:
            await self._delete(entry.chat_id, entry.message_id)
        already_sent = self.stickers.sent_ids(job.user_id, job.job_id)
        for sticker in out:
            if sticker.sticker_id in already_sent:
                continue  # a retry after a later sticker of this job failed: not again
            webp = await asyncio.to_thread(telegram_webp, sticker.png)
            try:
                message = await self.bot.send_sticker(
                    chat["chat_id"], InputFile(webp, filename="sticker.webp"),
                    reply_parameters=_reply_to(chat), message_thread_id=chat.get("thread_id"),
                    reply_markup=sticker_keyboard(sticker.sticker_id, job.user.platform_user_id),
                )
            except (Forbidden, BadRequest) as exc:
                log.warning("sticker not deliverable", extra={"job_id": job.job_id, "error": str(exc)})
                return
            self.stickers.record_sent(job.user_id, sticker.sticker_id, message.message_id)
            if message.sticker is not None:
                self.stickers.record_file_id(job.user_id, sticker.sticker_id, "telegram", message.sticker.file_id)

    async def _deliver_pack(self, job: JobView, chat: dict, out: list[StickerOut]) -> None:
        """A finished /makepack: into the user's sticker set (created in one call when new),
        then the progress message becomes the t.me/addstickers link. Telegram refusing the set
        (the user never opened a private chat with the bot, ...) is told, not retried."""
        if self.packs is None:
            raise LookupError("this Telegram sink has no TelegramPacks to put a pack into")
        assert job.pack is not None
        try:
            outcome = await self.packs.add_many(self.bot, job.user, job.user_id, [s.sticker_id for s in out])
            text = outcome.pack_message(job.pack.made, job.pack.size)
        except UserError as exc:
            text = exc.user_message
        await self._final_text(job, text, edit=False)  # a new message: the user is notified

    async def failed(self, job: JobView, message: str) -> None:
        await self._final_text(job, message)

    async def _final_text(self, job: JobView, message: str, *, edit: bool = True) -> None:
        """The job's last word: the progress message edited to `message` (or, without `edit`,
        deleted), else a new reply."""
        chat = _checked_chat(job)
        entry = self._finish(job.job_id)
        if not edit and entry is not None and entry.message_id is not None:
            await self._delete(entry.chat_id, entry.message_id)
            entry = None
        try:
            if entry is not None and entry.message_id is not None:
                try:
                    await self.bot.edit_message_text(message, chat_id=entry.chat_id, message_id=entry.message_id)
                    return
                except BadRequest:  # the progress message is gone: say it in a new one
                    pass
            await self.bot.send_message(chat["chat_id"], message, reply_parameters=_reply_to(chat),
                                        message_thread_id=chat.get("thread_id"))
        except (Forbidden, BadRequest) as exc:
            log.warning("failure notice not deliverable", extra={"job_id": job.job_id, "error": str(exc)})

    async def _delete(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.delete_message(chat_id, message_id)
        except TelegramError as exc:  # already gone, or older than 48 h: harmless
            log.info("progress message not deleted", extra={"chat_id": chat_id, "error": str(exc)})


def _ours(job: JobView) -> bool:
    return job.user.platform == "telegram" and job.chat.get("chat_id") is not None


def _checked_chat(job: JobView) -> dict:
    if not _ours(job):  # raising keeps the result for a sink that can deliver it
        raise LookupError(f"job {job.job_id} is not for a Telegram chat ({job.user.platform})")
    return job.chat


def _reply_to(chat: dict) -> ReplyParameters | None:
    if chat.get("message_id") is None:
        return None
    return ReplyParameters(chat["message_id"], allow_sending_without_reply=True)
