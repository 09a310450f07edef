"""What every Discord handler needs: the bot's services, who is asking, where to answer.

Handlers reach these through `interaction.client.deps` (see app.py), so the command
modules stay plain functions and nothing Discord-specific leaks into `bot/`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import discord
import sqlite_utils
from discord import app_commands

from bot import i18n
from bot.admin import AdminService
from bot.errors import UserError
from bot.guild_rules import GuildRules
from bot.i18n import _
from bot.messages import QueuedJob, QueuedPack, UserRef
from bot.pack_service import PackService
from bot.service import StickerService
from bot.settings import Settings

PLATFORM = "discord"


@dataclass
class DiscordDeps:
    settings: Settings
    db: sqlite_utils.Database
    service: StickerService
    admin: AdminService
    sink: object  # adapters.discord.sink.DiscordSink (import cycle otherwise)
    packs: PackService | None = None  # /makepack
    clock: Callable[[], float] = time.time  # wall clock of the /forget deadline (tests set their own)
    guilds: GuildRules = field(init=False)  # each server's channels and admin role

    def __post_init__(self) -> None:
        self.guilds = GuildRules(self.db, PLATFORM)


class Refused(app_commands.CheckFailure):
    """A command check that failed with a message for the member (app_commands checks must
    raise CheckFailure; StickerCommandTree.on_error shows `user_message`)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def deps(interaction: discord.Interaction) -> DiscordDeps:
    return interaction.client.deps  # type: ignore[attr-defined]


def user_ref(interaction: discord.Interaction) -> UserRef:
    user = interaction.user
    locale = interaction.locale.value if interaction.locale is not None else ""
    return UserRef(PLATFORM, str(user.id), user.display_name, locale)


def use_language(interaction: discord.Interaction) -> None:
    """The rest of this interaction is answered in the member's language: their /language
    choice, else their Discord client's (`interaction.locale`)."""
    i18n.activate(deps(interaction).service.language(user_ref(interaction)))


def chat_context(interaction: discord.Interaction) -> dict:
    """Where the job's sticker goes when the interaction can no longer be answered (after
    15 minutes, or after a restart): stored with the job, read back by the sink."""
    return {"channel_id": str(interaction.channel_id),
            "guild_id": str(interaction.guild_id) if interaction.guild_id else None}


def check_channel(interaction: discord.Interaction) -> None:
    """Sticker commands answer only in the channels the server's managers allowed (all by
    default); DMs always work."""
    if interaction.guild_id is None:
        return
    settings = deps(interaction).guilds.get(interaction.guild_id)
    if not settings.allows_channel(interaction.channel_id):
        places = ", ".join(f"<#{c}>" for c in settings.allowed_channels)
        raise UserError(_("In this server I make stickers in {places}. You can also DM me.", places=places),
                        code="channel")


async def send_ephemeral(interaction: discord.Interaction, text: str, **kwargs) -> None:
    """Answer only the member who asked, whether or not the interaction was answered yet."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, **kwargs)
    else:
        await interaction.response.send_message(text, ephemeral=True, **kwargs)


async def queue_and_track(interaction: discord.Interaction, make_job: Callable[[dict], QueuedJob | QueuedPack]) -> None:
    """Queue a job (every check happens in `make_job`, before we answer, so a refusal is
    private), answer in public with its queue position and a Cancel button for the member,
    and hand the answer to the sink, which edits it with progress and finally with the sticker."""
    from adapters.discord.buttons import cancel_view  # buttons imports this module

    check_channel(interaction)
    queued = make_job(chat_context(interaction))
    sink = deps(interaction).sink
    sink.track(queued.job_id, interaction)
    try:
        await interaction.response.send_message(queued.user_message(),
                                                view=cancel_view(queued.job_id, interaction.user.id))
    except BaseException:
        sink.answered(queued.job_id, False)  # the job stays queued; its sticker goes to the channel
        raise
    sink.answered(queued.job_id, True)
