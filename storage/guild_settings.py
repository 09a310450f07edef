"""guild_settings: what a server's managers chose for the bot in their server.

`allowed_channels` empty means every channel; `admin_role_id` None means only the bot's
configured admins (and members who can manage the server) run admin commands there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import sqlite_utils

from storage.transactions import immediate_transaction
from storage.transactions import now as _now


@dataclass(frozen=True)
class GuildSettings:
    platform: str
    guild_id: str
    allowed_channels: tuple[str, ...] = ()
    admin_role_id: str | None = None

    def allows_channel(self, channel_id: str | int | None) -> bool:
        return not self.allowed_channels or str(channel_id) in self.allowed_channels


def get_guild_settings(db: sqlite_utils.Database, platform: str, guild_id: str | int) -> GuildSettings:
    row = db.execute(
        "SELECT allowed_channels, admin_role_id FROM guild_settings WHERE platform = ? AND guild_id = ?",
        [platform, str(guild_id)],
    ).fetchone()
    if row is None:
        return GuildSettings(platform, str(guild_id))
    return GuildSettings(platform, str(guild_id), tuple(json.loads(row[0])), row[1])


def _save(db: sqlite_utils.Database, settings: GuildSettings) -> GuildSettings:
    db.execute(
        "INSERT INTO guild_settings (platform, guild_id, allowed_channels, admin_role_id, updated_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, guild_id) DO UPDATE SET "
        "allowed_channels = excluded.allowed_channels, admin_role_id = excluded.admin_role_id, "
        "updated_at = excluded.updated_at",
        [
            settings.platform,
            settings.guild_id,
            json.dumps(list(settings.allowed_channels)),
            settings.admin_role_id,
            _now(),
        ],
    )
    return settings


def set_channel_allowed(
    db: sqlite_utils.Database, platform: str, guild_id: str | int, channel_id: str | int, allowed: bool
) -> GuildSettings:
    """Add a channel to (or remove it from) the server's list of channels the bot answers in."""
    with immediate_transaction(db):
        current = get_guild_settings(db, platform, guild_id)
        channels = [c for c in current.allowed_channels if c != str(channel_id)]
        if allowed:
            channels.append(str(channel_id))
        return _save(db, GuildSettings(platform, str(guild_id), tuple(channels), current.admin_role_id))


def set_admin_role(
    db: sqlite_utils.Database, platform: str, guild_id: str | int, role_id: str | int | None
) -> GuildSettings:
    with immediate_transaction(db):
        current = get_guild_settings(db, platform, guild_id)
        role = str(role_id) if role_id is not None else None
        return _save(db, GuildSettings(platform, str(guild_id), current.allowed_channels, role))
