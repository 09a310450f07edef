"""The one adapter factory: a chat adapter's bot built from settings, for `stickerbot telegram`,
`stickerbot discord` and `stickerbot run` alike.

Each platform's module is imported only when that platform is asked for (each pulls in its
SDK). The token is read (and registered for redaction from the logs) when the factory is
made, so a missing token fails before a database or a runtime is opened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from bot.log_format import register_secret
from bot.settings import Settings, read_token

PLATFORMS = ("telegram", "discord")
_TITLES = {"telegram": "Telegram", "discord": "Discord"}


def _app_module(platform: str):
    if platform == "telegram":
        from adapters.telegram import app
    elif platform == "discord":
        from adapters.discord import app  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown chat platform {platform!r}; known: {', '.join(PLATFORMS)}")
    return app


def read_adapter_token(settings: Settings, platform: str) -> str:
    section = getattr(settings, platform)
    token = read_token(section.token, section.token_file, _TITLES[platform])
    register_secret(token)  # a token read from a token file is redacted from logs too
    return token


def chat_bot_factory(settings: Settings, platform: str) -> Callable:
    """`make(db, runtime_client, **options)` -> the platform's bot (`TelegramBot`, `DiscordBot`:
    `adapters.chat_bot.ChatBotProcess`). Raises ImportError when the platform's SDK is missing."""
    app = _app_module(platform)
    bot_class = app.TelegramBot if platform == "telegram" else app.DiscordBot
    return functools.partial(bot_class, settings, read_adapter_token(settings, platform))


def start_error_describer(platform: str) -> Callable:
    """`describe(exc, settings)` -> (exit code, one line) for a start-up failure the operator
    can fix (a rejected token, an unreachable API), or None."""
    return _app_module(platform).describe_start_error
