"""/forget: delete everything stored for a user, after a confirmation only they can press."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import deps, reply, user_ref
from bot import confirmations
from bot.i18n import _

log = logging.getLogger(__name__)

FORGET = "fg"


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    owner = update.effective_user.id
    until = confirmations.deadline(deps(context).clock())
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(_("Yes, delete everything"), callback_data=f"{FORGET}:yes:{owner}:{until}"),
                InlineKeyboardButton(_("Cancel"), callback_data=f"{FORGET}:no:{owner}:{until}"),
            ]
        ]
    )
    await reply(
        update,
        _("Delete your character, its learned version, your queued jobs and every sticker I "
          "stored for you? This cannot be undone."),
        reply_markup=keyboard,
    )


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    _prefix, answer, owner, until = query.data.split(":")
    if query.from_user.id != int(owner):
        await query.answer(_("Only the person who sent /forget can confirm it."), show_alert=True)
        return
    if answer == "no":
        await query.answer(_("Cancelled."))
        await _edit_or_ignore(query.message, _("OK, nothing was deleted."))
        return
    d = deps(context)
    if confirmations.expired(int(until), d.clock()):
        await query.answer(_("This confirmation expired: send /forget again."), show_alert=True)
        return
    user = user_ref(update)
    had_pack = d.packs.records.has_any(user.platform_user_id)
    counts = d.service.forget(user)
    await query.answer(_("Deleted."))
    text = (
        _("Done: I deleted your character and everything I stored for you.")
        if counts
        else _("I had nothing stored for you.")
    )
    if had_pack:
        text += " " + _("Your Telegram sticker pack belongs to you and stays; delete it in @Stickers if you want.")
    await _edit_or_ignore(query.message, text)


async def _edit_or_ignore(message: Message | None, text: str) -> None:
    if message is None:
        return
    try:
        await message.edit_text(text)
    except TelegramError as exc:
        log.info("could not edit the confirmation", extra={"error": str(exc)})
