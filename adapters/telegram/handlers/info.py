"""/start, /help, /status, and what the bot says to anything else in a private chat."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import deps, reply, user_errors_as_replies, user_ref
from bot.service import help_text


def telegram_help(bot_username: str) -> str:
    return (
        help_text() + "\n\nYour own sticker pack:\n"
        "   /pack — add your newest sticker to it (or press ➕ under a sticker)\n"
        "   /makepack — a whole pack at once, straight into your set\n"
        "   /mypack — the link to share it\n"
        f"In a group, address me as /mysticker@{bot_username} if several bots are there."
    )


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, telegram_help(context.bot.username))


@user_errors_as_replies
async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, deps(context).service.status(user_ref(update)))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "I don't know that command. Send /help to see what I can do.")


async def loose_picture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Nice picture! To make it your character, reply /setref to it.")
