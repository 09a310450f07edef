"""Pacing per chat, on both sides of the bot.

Outgoing: `ChatPacedRateLimiter` is PTB's `AIORateLimiter` (overall and per-group limits,
waits out a 429's `retry_after` and retries, pausing every request meanwhile) plus the
per-private-chat pace Telegram asks for ("about one message per second in a chat, short
bursts are fine"), which the stock limiter leaves out.

Incoming: `PerChatUpdateProcessor` handles updates of different chats concurrently but
the updates of one chat one after another, in order. A user's /setref then picture, or
a button pressed right after a command, never race each other, while a slow download
in one chat does not hold up the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

from bot.settings import TelegramSettings

MAX_TRACKED_CHATS = 1024


class ChatPacedRateLimiter(AIORateLimiter):
    def __init__(self, *, overall_max_rate: float = 30, group_max_rate: float = 20, chat_max_rate: float = 1,
                 chat_burst: int = 3, max_retries: int = 5) -> None:
        super().__init__(overall_max_rate=overall_max_rate, overall_time_period=1,
                         group_max_rate=group_max_rate, group_time_period=60, max_retries=max_retries)
        self._chat_burst = max(1, chat_burst)
        self._chat_period = self._chat_burst / chat_max_rate if chat_max_rate > 0 else 0
        self._chat_limiters: dict[int, AsyncLimiter] = {}

    @classmethod
    def from_settings(cls, settings: TelegramSettings) -> ChatPacedRateLimiter:
        return cls(overall_max_rate=settings.overall_max_rate, group_max_rate=settings.group_max_rate,
                   chat_max_rate=settings.chat_max_rate, chat_burst=settings.chat_burst,
                   max_retries=settings.max_retries)

    def _chat_limiter(self, chat_id: Any) -> AsyncLimiter | None:
        try:
            chat_id = int(chat_id)
        except (TypeError, ValueError):
            return None  # no chat, or a channel @username: the group limiter covers those
        if chat_id <= 0 or not self._chat_period:
            return None  # groups and channels have negative ids and their own limiter
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            if len(self._chat_limiters) >= MAX_TRACKED_CHATS:
                for key, idle in list(self._chat_limiters.items()):
                    if idle.has_capacity(idle.max_rate):
                        del self._chat_limiters[key]
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(self._chat_burst, self._chat_period)
        return limiter

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        limiter = self._chat_limiter(data.get("chat_id"))
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


class PerChatUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, sequential within a chat."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[object, asyncio.Lock] = {}
        self._waiting: dict[object, int] = {}

    @staticmethod
    def chat_key(update: object) -> object:
        if isinstance(update, Update):
            if update.effective_chat is not None:
                return update.effective_chat.id
            if update.effective_user is not None:
                return ("user", update.effective_user.id)
        return None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = self.chat_key(update)
        if key is None:
            await coroutine
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:  # nobody else queued on this chat: forget its lock
                del self._waiting[key]
                del self._locks[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
