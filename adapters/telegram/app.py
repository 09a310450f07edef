"""Building and running the Telegram bot: the PTB Application plus the JobWorker feeding its sink.

    bot = TelegramBot(settings, token, db, RuntimeClient(settings.general.runtime_url))
    await bot.serve(stop_event)        # `stickerbot telegram`
    async with bot.running(): ...      # tests and the benchmark

The Bot API address comes from settings (`telegram.base_url`, `telegram.base_file_url`),
so a self-hosted Bot API server works, and the tests point it at a fake on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys

import sqlite_utils
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder

from adapters.chat_bot import ChatBotProcess
from adapters.telegram import handlers
from adapters.telegram.pacing import ChatPacedRateLimiter, PerChatUpdateProcessor
from adapters.telegram.packs import TelegramPacks
from adapters.telegram.sink import TelegramSink
from bot.admin import AdminService
from bot.job_worker import JobWorker
from bot.pack_service import PackService
from bot.service import StickerService
from bot.settings import Settings
from seal_runtime.api.client import RuntimeClient

log = logging.getLogger(__name__)

# httpcore (under PTB's httpx) runs `import sniffio` on every request; when sniffio is not
# installed (anyio 4 no longer pulls it in) each failed import walks sys.path again (what
# that cost: docs/measurements.md). Recording the absence once makes that import fail
# instantly; behaviour is otherwise unchanged (httpcore then assumes asyncio, which is what
# we run).
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def build_application(settings: Settings, token: str, db: sqlite_utils.Database) -> Application:
    """The PTB application with every handler wired, and its sink (in bot_data)."""
    tg = settings.telegram
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(tg.base_url)
        .base_file_url(tg.base_file_url)
        .connection_pool_size(tg.connection_pool_size)
        .pool_timeout(30)  # a request may wait for a free connection while the rate limiter holds others
        .rate_limiter(ChatPacedRateLimiter.from_settings(tg))
        .concurrent_updates(PerChatUpdateProcessor(tg.max_concurrent_updates))
        .build()
    )
    packs = TelegramPacks(db, settings)
    sink = TelegramSink(application.bot, db, job_queue=application.job_queue,
                        progress_interval_s=tg.progress_interval_s, packs=packs)
    service = StickerService(db, settings)
    application.bot_data[handlers.DEPS] = handlers.TelegramDeps(
        settings=settings, db=db, service=service, admin=AdminService(db, settings),
        packs=packs, sink=sink, pack_service=PackService(db, settings, service))
    handlers.register(application)
    return application


def describe_start_error(exc: BaseException, settings: Settings) -> tuple[int, str] | None:
    """A failure to start that the operator can fix, as (exit code, one line); None if it
    is not one. Never the token: PTB's InvalidToken message contains it."""
    if isinstance(exc, InvalidToken):
        return 2, "Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN or telegram.token_file)"
    if isinstance(exc, NetworkError):
        return 1, f"cannot reach the Telegram Bot API at {settings.telegram.base_url}: {exc}"
    return None


class TelegramBot(ChatBotProcess):
    """One Telegram bot process: polling for updates, and a worker running the queued jobs."""

    def __init__(self, settings: Settings, token: str, db: sqlite_utils.Database, runtime: RuntimeClient, *,
                 worker_id: str = "telegram") -> None:
        # The JobQueue's scheduler logs four INFO lines per scheduled progress edit.
        logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
        self.settings = settings
        self.db = db
        self.runtime = runtime
        self.application = build_application(settings, token, db)
        self.deps: handlers.TelegramDeps = self.application.bot_data[handlers.DEPS]
        super().__init__(JobWorker(db, settings, runtime, self.deps.sink, worker_id=worker_id,
                                   platforms=("telegram",)))

    @property
    def sink(self) -> TelegramSink:
        return self.deps.sink

    async def start(self, *, poll_timeout: float = 10, run_worker: bool = True) -> None:
        await self.application.initialize()
        try:  # the command menu in Telegram's clients; a bot works without it
            await handlers.set_commands(self.application)
        except TelegramError as exc:
            log.warning("could not set the command menu", extra={"error": str(exc)})
        await self.application.start()
        await self.application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout,
                                                     allowed_updates=ALLOWED_UPDATES)
        if run_worker:
            self.start_worker()
        log.info("telegram bot started", extra={"bot": self.application.bot.username})

    async def stop(self) -> None:
        if self.application.updater.running:
            await self.application.updater.stop()
        await self.stop_worker()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def serve(self, stop: asyncio.Event) -> None:
        async with self.running():
            await stop.wait()
