"""The buttons under a delivered sticker: add to pack, again, delete."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import chat_context, deps, user_ref
from adapters.telegram.sink import ADD_TO_PACK, AGAIN, DELETE
from bot.errors import UserError

log = logging.getLogger(__name__)


async def sticker_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Add to pack / Again / Delete. Only the user the sticker was made for may press them."""
    query = update.callback_query
    action, raw_id, owner = query.data.split(":")
    if str(query.from_user.id) != owner:
        await query.answer("Only the person who asked for this sticker can use its buttons.", show_alert=True)
        return
    d = deps(context)
    user = user_ref(update)
    message = query.message
    try:
        user_id = d.service.user_id(user)  # refuses banned users
        sticker = d.service.stickers.own(user_id, int(raw_id))  # only ever the presser's own
        if action == ADD_TO_PACK:
            outcome = await d.packs.add(context.bot, user, user_id, sticker.id)
            await query.answer("Added." if outcome.status in ("added", "created") else None)
            await message.reply_text(outcome.user_message(), do_quote=True)
        elif action == AGAIN:
            queued = d.service.request_sticker(user, d.service.words_of(user_id, sticker), chat_context(message))
            await query.answer("Making another one…")
            sent = await message.reply_text(queued.user_message(), do_quote=True)
            d.sink.track(queued.job_id, sent.chat_id, sent.message_id)
        elif action == DELETE:
            d.service.stickers.delete(user_id, sticker.id)
            await query.answer("Deleted.")
            try:
                await message.delete()
            except TelegramError as exc:  # older than 48 h, or already gone
                log.info("sticker message not deleted", extra={"error": str(exc)})
    except UserError as exc:  # raised before the query was answered
        await query.answer(exc.user_message, show_alert=True)
