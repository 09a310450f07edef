"""/start, /help, /status, and what the bot says to anything else in a private chat."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import deps, reply, user_errors_as_replies, user_ref
from bot.i18n import _
from bot.service import help_text


def telegram_help(bot_username: str) -> str:
    return "\n".join([
        help_text(),
        "",
        _("Your own sticker pack:"),
        _("   /pack — add your newest sticker to it (or press ➕ under a sticker)"),
        _("   /makepack — a whole pack at once, straight into your set"),
        _("   /mypack — the link to share it"),
        _("In any chat, type @{bot} and a few words to send one of your stickers.", bot=bot_username),
        _("In a group, address me as /mysticker@{bot} if several bots are there.", bot=bot_username),
    ])


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, telegram_help(context.bot.username))


@user_errors_as_replies
async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, deps(context).service.status(user_ref(update)))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, _("I don't know that command. Send /help to see what I can do."))


async def loose_picture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, _("Nice picture! To make it your character, reply /setref to it."))
