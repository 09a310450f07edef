"""The bot admins' commands: /stats, /ban, /unban, /quota."""

from __future__ import annotations

import functools

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import PLATFORM, deps, reply
from bot.errors import UserError


def admin_only(handler):
    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE):
        if not deps(context).admin.is_admin(PLATFORM, update.effective_user.id):
            await reply(update, "That command is for the bot's admins.")
            return
        try:
            await handler(update, context)
        except UserError as exc:
            await reply(update, exc.user_message)

    return wrapper


def _target(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The user an admin command is about: the first argument, or the author of the replied message."""
    if context.args:
        return context.args[0]
    replied = update.effective_message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return str(replied.from_user.id)
    raise UserError("Whom? Give a Telegram user id (e.g. /ban 123456789) or reply to one of their messages.")


@admin_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "\n".join(deps(context).admin.stats().lines()))


@admin_only
async def ban(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Banned. " + deps(context).admin.ban(PLATFORM, _target(update, context)).line())


@admin_only
async def unban(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Unbanned. " + deps(context).admin.unban(PLATFORM, _target(update, context)).line())


@admin_only
async def quota(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/quota <user id> [<stickers per day> | default]  (or as a reply: /quota <n>)."""
    args = list(context.args or [])
    replied = update.effective_message.reply_to_message
    if len(args) == 1 and replied is not None and replied.from_user is not None:
        args.insert(0, str(replied.from_user.id))
    if not args:
        raise UserError("Usage: /quota <user id> [<stickers per day> | default]")
    admin = deps(context).admin
    if len(args) == 1:
        await reply(update, admin.user_summary(PLATFORM, args[0]).line())
        return
    value = args[1].lower()
    if value == "default":
        amount = None
    elif value.isdigit():
        amount = int(value)
    else:
        raise UserError("The quota is a number of stickers per day, or 'default'.")
    await reply(update, "Quota set. " + admin.set_quota(PLATFORM, args[0], amount).line())
