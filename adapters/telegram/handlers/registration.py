"""Every Telegram handler wired in one place, the command menu, and the error handler.

In groups a command may be addressed as `/cmd@botname` (PTB's CommandHandler ignores commands
for other bots), and replies quote the command, so the right person gets the answer.
"""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from adapters.telegram.handlers.account import FORGET, forget, forget_button
from adapters.telegram.handlers.admin import ban, quota, stats, unban
from adapters.telegram.handlers.callbacks import sticker_button
from adapters.telegram.handlers.info import loose_picture, start, status, unknown_command
from adapters.telegram.handlers.packs import export, makepack, mypack, pack
from adapters.telegram.handlers.references import setref_conversation
from adapters.telegram.handlers.stickers import again, mysticker
from adapters.telegram.sink import ADD_TO_PACK, AGAIN, DELETE

log = logging.getLogger(__name__)

COMMANDS = [
    ("start", "what this bot does"),
    ("help", "the words I understand, with examples"),
    ("setref", "save your character (send or reply to a picture)"),
    ("mysticker", "a new sticker, e.g. /mysticker happy waving beach"),
    ("again", "another take of your last sticker"),
    ("pack", "add your newest sticker to your own sticker pack"),
    ("makepack", "a whole pack of your character, e.g. /makepack cozy winter"),
    ("export", "your pack for WhatsApp or Signal: /export whatsapp"),
    ("mypack", "the link to your sticker pack"),
    ("status", "your place in the queue"),
    ("forget", "delete your character and everything stored for you"),
    ("cancel", "stop waiting for a picture"),
]


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("handler failed", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None and update.callback_query is None:
        try:
            await update.effective_message.reply_text("Sorry, something went wrong on my side. Please try again.")
        except TelegramError:
            pass


async def set_commands(application: Application) -> None:
    await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])


def register(application: Application) -> None:
    application.add_handler(setref_conversation())
    application.add_handler(CommandHandler(["start", "help"], start))
    application.add_handler(CommandHandler("mysticker", mysticker))
    application.add_handler(CommandHandler("again", again))
    application.add_handler(CommandHandler("pack", pack))
    application.add_handler(CommandHandler("mypack", mypack))
    application.add_handler(CommandHandler("makepack", makepack))
    application.add_handler(CommandHandler("export", export))
    application.add_handler(CommandHandler("status", status))
    application.add_handler(CommandHandler("forget", forget))
    application.add_handler(CommandHandler("stats", stats))
    application.add_handler(CommandHandler("ban", ban))
    application.add_handler(CommandHandler("unban", unban))
    application.add_handler(CommandHandler("quota", quota))
    application.add_handler(
        CallbackQueryHandler(sticker_button, pattern=rf"^({ADD_TO_PACK}|{AGAIN}|{DELETE}):\d+:\d+$")
    )
    application.add_handler(CallbackQueryHandler(forget_button, pattern=rf"^{FORGET}:(yes|no):\d+:\d+$"))
    # Last: only what nothing above took. In groups the bot stays quiet about other messages.
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, unknown_command))
    application.add_handler(
        MessageHandler(filters.ChatType.PRIVATE & (filters.PHOTO | filters.Document.IMAGE), loose_picture)
    )
    application.add_error_handler(on_error)
