"""/mysticker and /again: a sticker job queued, and the "Queued…" reply the sink then edits."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import (
    chat_context,
    command_text,
    deps,
    queue_reply,
    user_errors_as_replies,
    user_ref,
)


@user_errors_as_replies
async def mysticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    queued = deps(context).service.request_sticker(user_ref(update), command_text(message), chat_context(message))
    await queue_reply(context, queued, message)


@user_errors_as_replies
async def again(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    queued = deps(context).service.again(user_ref(update), chat_context(message))
    await queue_reply(context, queued, message)
