"""What a server's managers chose for the bot in their server: the channels it makes stickers
in, and the role that may use its admin commands. Platform adapters reach the guild settings
table only through here."""

from __future__ import annotations

import sqlite_utils

from storage import guild_settings
from storage.guild_settings import GuildSettings

__all__ = ["GuildRules", "GuildSettings"]


class GuildRules:
    def __init__(self, db: sqlite_utils.Database, platform: str) -> None:
        self.db = db
        self.platform = platform

    def get(self, guild_id: str | int) -> GuildSettings:
        return guild_settings.get_guild_settings(self.db, self.platform, guild_id)

    def allow_channel(self, guild_id: str | int, channel_id: str | int, allowed: bool) -> GuildSettings:
        return guild_settings.set_channel_allowed(self.db, self.platform, guild_id, channel_id, allowed)

    def set_admin_role(self, guild_id: str | int, role_id: str | int | None) -> GuildSettings:
        return guild_settings.set_admin_role(self.db, self.platform, guild_id, role_id)
