"""The Telegram commands: each handler parses the update, calls `bot/`, and replies.

One module per command group: `info` (/start /help /status, anything else), `references`
(/setref), `stickers` (/mysticker /again), `packs` (/pack /mypack /makepack /export), `account`
(/forget), `callbacks` (the buttons under a sticker), `admin` (/stats /ban /unban /quota).
`registration.register(application)` wires them in one place; `common` holds what they share.
"""

from adapters.telegram.handlers.common import DEPS, TelegramDeps
from adapters.telegram.handlers.registration import COMMANDS, register, set_commands

__all__ = ["COMMANDS", "DEPS", "TelegramDeps", "register", "set_commands"]
