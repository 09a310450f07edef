"""Building and running the Discord bot: a discord.py client with the slash commands, and
the JobWorker feeding its sink.

    bot = DiscordBot(settings, token, db, RuntimeClient(settings.general.runtime_url))
    await bot.serve(stop_event)                    # `stickerbot discord`
    async with bot.running(connect=False): ...    # tests: REST only, interactions fed in

No privileged intents: slash commands, buttons and menus arrive as interactions, and the
`guilds` and `emojis_and_stickers` intents (neither privileged) keep servers, roles, channels
and server stickers cached. The REST address can be changed
(`discord.api_base`); the tests point it at a fake Discord on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import discord
import sqlite_utils
from discord import app_commands

from adapters.chat_bot import ChatBotProcess
from adapters.discord import admin_commands, commands
from adapters.discord.buttons import CancelButton, ForgetButton, StickerButton
from adapters.discord.context import DiscordDeps, Refused, send_ephemeral, use_language
from adapters.discord.gallery import PackSelect
from adapters.discord.sink import DiscordSink
from adapters.discord.translator import CatalogTranslator
from bot.admin import AdminService
from bot.errors import UserError
from bot.i18n import _
from bot.job_worker import JobWorker
from bot.pack_service import PackService
from bot.service import StickerService
from bot.settings import Settings
from seal_runtime.api.client import RuntimeClient

log = logging.getLogger(__name__)


class StickerCommandTree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        use_language(interaction)  # the command's answers, errors included, in the member's language
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, (UserError, Refused)):
            text = original.user_message
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = _("That command works in a server, not in DMs.")
        elif isinstance(error, (app_commands.MissingPermissions, app_commands.BotMissingPermissions)):
            text = _("Missing permission: {permissions}.", permissions=", ".join(error.missing_permissions))
        elif isinstance(error, app_commands.CheckFailure):
            text = _("You can't use that command here.")
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command failed", exc_info=original, extra={"command": command,
                                                                    "guild_id": interaction.guild_id})
            text = _("Sorry, something went wrong on my side. Please try again.")
        try:
            await send_ephemeral(interaction, text)
        except discord.HTTPException as exc:
            log.warning("could not answer a failed command", extra={"status": exc.status})


class StickerClient(discord.Client):
    def __init__(self, settings: Settings) -> None:
        # No voice here: discord.py's start-up warnings about voice libraries would only mislead.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(intents=discord.Intents(guilds=True, emojis_and_stickers=True))
        self.settings = settings
        self.tree = StickerCommandTree(self)
        for command in commands.COMMANDS + admin_commands.GROUPS:
            self.tree.add_command(command)
        self.deps: DiscordDeps | None = None  # set by DiscordBot

    async def setup_hook(self) -> None:
        self.add_dynamic_items(StickerButton, ForgetButton, CancelButton, PackSelect)
        await self.tree.set_translator(CatalogTranslator())
        if self.settings.discord.sync_commands:
            await sync_commands(self.tree, self.settings.discord.dev_guild_id)


async def sync_commands(tree: app_commands.CommandTree, dev_guild_id: int | None) -> None:
    """Globally, or to one development server where changes show at once."""
    try:
        if dev_guild_id:
            guild = discord.Object(dev_guild_id)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
        else:
            synced = await tree.sync()
    except discord.HTTPException as exc:  # the bot still answers the commands Discord already knows
        log.warning("could not sync the slash commands", extra={"status": exc.status, "error": exc.text})
        return
    log.info("slash commands synced", extra={"count": len(synced), "guild_id": dev_guild_id})


def describe_start_error(exc: BaseException, settings: Settings) -> tuple[int, str] | None:
    """A failure to start that the operator can fix, as (exit code, one line); None if it
    is not one. Never the token."""
    if isinstance(exc, discord.LoginFailure):
        return 2, "Discord rejected the bot token (check DISCORD_BOT_TOKEN or discord.token_file)"
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return 2, "Discord asks for a privileged intent; this bot needs none: check the bot's settings"
    if isinstance(exc, (aiohttp.ClientError, discord.GatewayNotFound, OSError)):
        return 1, f"cannot reach Discord: {exc}"
    return None


class DiscordBot(ChatBotProcess):
    """One Discord bot process: the gateway for interactions, and a worker for queued jobs."""

    def __init__(self, settings: Settings, token: str, db: sqlite_utils.Database, runtime: RuntimeClient, *,
                 worker_id: str = "discord") -> None:
        if settings.discord.api_base:
            discord.http.Route.BASE = settings.discord.api_base.rstrip("/")
        self.settings = settings
        self.token = token
        self.db = db
        self.client = StickerClient(settings)
        self.sink = DiscordSink(self.client, db, progress_interval_s=settings.discord.progress_interval_s,
                                button_timeout_s=settings.discord.button_timeout_s)
        service = StickerService(db, settings)
        self.client.deps = DiscordDeps(settings, db, service, AdminService(db, settings), self.sink,
                                       packs=PackService(db, settings, service))
        super().__init__(JobWorker(db, settings, runtime, self.sink, worker_id=worker_id, platforms=("discord",)))
        self.gateway: asyncio.Task | None = None

    async def start(self, *, run_worker: bool = True, connect: bool = True) -> None:
        await self.client.login(self.token)  # raises discord.LoginFailure on a bad token
        if connect:
            self.gateway = asyncio.create_task(self.client.connect(reconnect=True), name="discord-gateway")
        if run_worker:
            self.start_worker()
        log.info("discord bot started", extra={"bot": str(self.client.user)})

    async def stop(self) -> None:
        await self.stop_worker()
        await self.client.close()
        if self.gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.gateway
            self.gateway = None

    async def serve(self, stop: asyncio.Event) -> None:
        """Until `stop` is set, or the gateway gives up (it raises then, e.g. on a bad token)."""
        async with self.running():
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({stopped, self.gateway}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if self.gateway.done() and not stop.is_set():
                self.gateway.result()  # re-raise what ended it
