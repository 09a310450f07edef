"""/language: the language the bot speaks with a user, chosen with a button or a code.

Without a choice the bot follows the user's Telegram app (`language_code`, read with every
update); `/language es` or a button stores a choice for the user (bot/service.py), and
`/language auto` goes back to the app's language.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import (
    command_text,
    deps,
    pressed_by_owner,
    reply,
    user_errors_as_replies,
    user_ref,
)
from bot import i18n
from bot.i18n import _
from bot.messages import language_changed, language_menu

LANGUAGE = "lg"  # callback data "lg:<code>:<owner>"


def language_keyboard(owner: int) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(name, callback_data=f"{LANGUAGE}:{code}:{owner}")
               for code, name in i18n.LANGUAGES.items()]
    return InlineKeyboardMarkup([buttons, [InlineKeyboardButton(_("My app's language"),
                                                                callback_data=f"{LANGUAGE}:auto:{owner}")]])


@user_errors_as_replies
async def language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    choice = command_text(update.effective_message)
    if not choice:
        await reply(update, language_menu(), reply_markup=language_keyboard(update.effective_user.id))
        return
    await reply(update, language_changed(deps(context).service.set_language(user_ref(update), choice)))


async def language_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    if (fields := await pressed_by_owner(update)) is None:
        return
    (choice,) = fields
    text = language_changed(deps(context).service.set_language(user_ref(update), choice))
    await query.answer()
    if query.message is not None:
        await query.message.edit_text(text)
