"""/pack, /mypack, /makepack and /export: the user's own sticker set and its exports."""

from __future__ import annotations

import asyncio

from telegram import InputFile, Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import (
    chat_context,
    command_text,
    deps,
    queue_reply,
    reply,
    user_errors_as_replies,
    user_ref,
)
from adapters.telegram.packs import set_link
from bot.exports.builder import encode_export, select_export


@user_errors_as_replies
async def pack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    user = user_ref(update)
    outcome = await d.packs.add(context.bot, user, d.service.user_id(user))
    await reply(update, outcome.user_message())


@user_errors_as_replies
async def mypack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    current = d.packs.current_pack(d.service.user_id(user_ref(update)))
    if current is None:
        await reply(update, "You have no sticker pack yet. Make a sticker with /mysticker, then send /pack.")
        return
    await reply(update, f'Your pack "{current.title}": {set_link(current.name)}')


# -- /makepack /export ----------------------------------------------------------------------
@user_errors_as_replies
async def makepack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/makepack [N] [words]: N stickers into the user's set at once (the sink delivers it)."""
    message = update.effective_message
    queued = deps(context).pack_service.make_pack(user_ref(update), command_text(message), chat_context(message))
    await queue_reply(context, queued, message)


@user_errors_as_replies
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export whatsapp | signal | png: the user's pack as a file (bot/exports/)."""
    d = deps(context)
    user = user_ref(update)
    request = select_export(
        d.db,
        d.settings,
        d.service.user_id(user),
        user.display_name,
        command_text(update.effective_message) or "whatsapp",
    )
    exported = await asyncio.to_thread(encode_export, request)  # dozens of WebP encodes: off the event loop
    await update.effective_message.reply_document(
        InputFile(exported.data, filename=exported.name), caption=exported.user_message()
    )
