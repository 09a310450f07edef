"""What every Telegram handler shares: its dependencies, who is asking, where the answer goes.

The handlers live one module per command group (info, references, stickers, packs, account,
callbacks, admin); `registration.register(application)` wires them in one place.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Message, Update
from telegram.ext import ContextTypes, ConversationHandler

from adapters.telegram.packs import TelegramPacks
from adapters.telegram.sink import TelegramSink, cancel_keyboard
from bot import i18n
from bot.admin import AdminService
from bot.errors import UserError
from bot.i18n import _
from bot.messages import UserRef
from bot.pack_service import PackService
from bot.service import StickerService
from bot.settings import Settings

DEPS = "stickerbot"
PLATFORM = "telegram"


@dataclass
class TelegramDeps:
    settings: Settings
    db: object
    service: StickerService
    admin: AdminService
    packs: TelegramPacks
    sink: TelegramSink
    pack_service: PackService
    clock: Callable[[], float] = time.time  # wall clock of the /forget deadline (tests set their own)


def deps(context: ContextTypes.DEFAULT_TYPE) -> TelegramDeps:
    return context.application.bot_data[DEPS]


def user_ref(update: Update) -> UserRef:
    user = update.effective_user
    return UserRef(PLATFORM, str(user.id), user.full_name, user.language_code or "")


async def use_language(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """First for every update (group -1): the rest of its handling answers in the user's
    language (their /language choice, else their Telegram app's `language_code`)."""
    if isinstance(update, Update) and update.effective_user is not None:
        i18n.activate(deps(context).service.language(user_ref(update)))


def chat_context(message: Message) -> dict:
    """Where the job's sticker goes: stored with the job, read back by the sink."""
    return {
        "chat_id": message.chat_id,
        "message_id": message.message_id,
        "thread_id": message.message_thread_id if message.is_topic_message else None,
    }


def command_text(message: Message) -> str:
    """What follows `/cmd` or `/cmd@botname`, as the user wrote it."""
    text = message.text or ""
    first = message.entities[0] if message.entities else None
    if first is not None and first.type == "bot_command" and first.offset == 0:
        return text[len(message.parse_entity(first)) :].strip()
    return text.strip()


async def reply(update: Update, text: str, **kwargs) -> Message:
    return await update.effective_message.reply_text(text, **kwargs)


def user_errors_as_replies(handler):
    """A UserError (bad input, no character yet, banned...) becomes a friendly reply."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE):
        try:
            return await handler(update, context)
        except UserError as exc:
            await reply(update, exc.user_message)
            return ConversationHandler.END

    return wrapper


async def pressed_by_owner(update: Update) -> tuple[str, ...] | None:
    """A button's callback data "<kind>:<fields…>:<owner id>" split into its fields, when the
    person pressing it is its owner; for anyone else, None, after a private refusal."""
    query = update.callback_query
    *fields, owner = query.data.split(":")[1:]
    if str(query.from_user.id) == owner:
        return tuple(fields)
    await query.answer(_("Only the person who asked for this can use this button."), show_alert=True)
    return None


async def queue_reply(context: ContextTypes.DEFAULT_TYPE, queued, reply_to: Message, owner: int, **kwargs) -> None:
    """The "Queued…" reply with its Cancel button (for `owner` only), which the sink then
    edits with the job's progress."""
    keyboard = cancel_keyboard(queued.job_id, owner)
    sent = await reply_to.reply_text(queued.user_message(), reply_markup=keyboard, **kwargs)
    deps(context).sink.track(queued.job_id, sent.chat_id, sent.message_id, keyboard)
