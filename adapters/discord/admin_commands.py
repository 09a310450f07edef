"""Admin and per-server commands.

/stickeradmin stats|ban|unban|quota — for the bot's admins (`discord.admin_ids`) anywhere,
and in a server for members holding the admin role its managers chose. Bans and quotas
are bot-wide: a self-hosted bot serves one community.

/stickerconfig show|allow-channel|disallow-channel|admin-role — for members who can
manage the server: where the bot answers in this server, and its admin role.
"""

from __future__ import annotations

import discord
from discord import app_commands

from adapters.discord.context import PLATFORM, Refused, deps, send_ephemeral
from bot.guild_rules import GuildSettings


def is_bot_admin(interaction: discord.Interaction) -> bool:
    d = deps(interaction)
    if d.admin.is_admin(PLATFORM, interaction.user.id):
        return True
    if interaction.guild_id is None or not isinstance(interaction.user, discord.Member):
        return False
    role = d.guilds.get(interaction.guild_id).admin_role_id
    return role is not None and interaction.user.get_role(int(role)) is not None


def _admins_only(interaction: discord.Interaction) -> bool:
    if not is_bot_admin(interaction):
        raise Refused("These commands are for the bot's admins (and, in a server, its admin role).")
    return True


admin_group = app_commands.Group(name="stickeradmin", description="Bot admin: stats, bans and quotas",
                                 allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True))


@admin_group.command(name="stats", description="How many users, characters, stickers and jobs")
@app_commands.check(_admins_only)
async def stats(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, "\n".join(deps(interaction).admin.stats().lines()))


@admin_group.command(name="ban", description="Stop a member from using the bot")
@app_commands.check(_admins_only)
async def ban(interaction: discord.Interaction, member: discord.User) -> None:
    await send_ephemeral(interaction, "Banned. " + deps(interaction).admin.ban(PLATFORM, member.id).line())


@admin_group.command(name="unban", description="Let a banned member use the bot again")
@app_commands.check(_admins_only)
async def unban(interaction: discord.Interaction, member: discord.User) -> None:
    await send_ephemeral(interaction, "Unbanned. " + deps(interaction).admin.unban(PLATFORM, member.id).line())


@admin_group.command(name="quota", description="Show or set a member's stickers per day")
@app_commands.describe(per_day="Stickers per day (leave out to show the current quota)",
                       reset="Go back to the configured default quota")
@app_commands.check(_admins_only)
async def quota(interaction: discord.Interaction, member: discord.User,
                per_day: app_commands.Range[int, 0, 100_000] | None = None, reset: bool = False) -> None:
    admin = deps(interaction).admin
    if reset:
        summary, prefix = admin.set_quota(PLATFORM, member.id, None), "Quota reset. "
    elif per_day is not None:
        summary, prefix = admin.set_quota(PLATFORM, member.id, per_day), "Quota set. "
    else:
        summary, prefix = admin.user_summary(PLATFORM, member.id), ""
    await send_ephemeral(interaction, prefix + summary.line())


# -- per-server settings -----------------------------------------------------------------------
config_group = app_commands.Group(name="stickerconfig", description="Where the sticker bot answers in this server",
                                  guild_only=True, default_permissions=discord.Permissions(manage_guild=True))


def _managers_only(interaction: discord.Interaction) -> bool:
    # Discord hides the group from others (default_permissions), but server admins can
    # override that per channel or role; the bot checks the permission itself as well.
    if not interaction.permissions.manage_guild:
        raise Refused("Only members who can manage this server can change my settings here.")
    return True


def _describe(settings: GuildSettings) -> str:
    channels = ", ".join(f"<#{c}>" for c in settings.allowed_channels) or "every channel"
    role = f"<@&{settings.admin_role_id}>" if settings.admin_role_id else "none (only the bot's admins)"
    return f"Sticker commands work in: {channels}.\nAdmin role: {role}."


@config_group.command(name="show", description="Show this server's settings")
@app_commands.check(_managers_only)
async def show(interaction: discord.Interaction) -> None:
    current = deps(interaction).guilds.get(interaction.guild_id)
    await send_ephemeral(interaction, _describe(current))


async def _set_channel(interaction: discord.Interaction, channel: discord.TextChannel, allowed: bool) -> None:
    updated = deps(interaction).guilds.allow_channel(interaction.guild_id, channel.id, allowed)
    await send_ephemeral(interaction, _describe(updated))


@config_group.command(name="allow-channel", description="Make stickers in this channel (and the others allowed)")
@app_commands.check(_managers_only)
async def allow_channel(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
    await _set_channel(interaction, channel, True)


@config_group.command(name="disallow-channel", description="Stop making stickers in this channel")
@app_commands.check(_managers_only)
async def disallow_channel(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
    await _set_channel(interaction, channel, False)


@config_group.command(name="admin-role", description="The role that may use /stickeradmin here (leave out to clear)")
@app_commands.check(_managers_only)
async def admin_role(interaction: discord.Interaction, role: discord.Role | None = None) -> None:
    updated = deps(interaction).guilds.set_admin_role(interaction.guild_id, role.id if role else None)
    await send_ephemeral(interaction, _describe(updated))


GROUPS = (admin_group, config_group)
