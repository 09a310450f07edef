"""Admin operations, platform-free: who is an admin, stats, ban/unban, per-user quota.

Adapters check `is_admin` first and render the typed results. Users are named by
(platform, platform user id), as the platforms know them; a ban or quota can be set
before the user ever spoke to the bot (their row is created), so it applies from
their first command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlite_utils

from bot.errors import UserError
from bot.settings import Settings
from storage import users

DAY_S = 24 * 3600


@dataclass(frozen=True)
class BotStats:
    users: int
    banned: int
    references: int
    stickers: int
    packs: int
    embeddings: int
    jobs_by_state: dict[str, int]
    jobs_last_24h: int

    def lines(self) -> list[str]:
        states = ", ".join(f"{state} {count}" for state, count in sorted(self.jobs_by_state.items())) or "none"
        return [
            f"Users: {self.users} ({self.banned} banned)",
            f"Characters saved: {self.references}, learned embeddings cached: {self.embeddings}",
            f"Stickers stored: {self.stickers}, packs: {self.packs}",
            f"Jobs: {states}; created in the last 24 h: {self.jobs_last_24h}",
        ]


@dataclass(frozen=True)
class UserSummary:
    platform: str
    platform_user_id: str
    display_name: str | None
    banned: bool
    daily_quota: int  # the effective quota
    quota_overridden: bool
    jobs_last_24h: int

    def line(self) -> str:
        quota = f"{self.daily_quota}/day" + (" (set by an admin)" if self.quota_overridden else " (default)")
        name = f" {self.display_name}" if self.display_name else ""
        state = "banned" if self.banned else "active"
        return (
            f"{self.platform} user {self.platform_user_id}{name}: {state}, quota {quota}, "
            f"{self.jobs_last_24h} stickers asked in the last 24 h"
        )


class AdminService:
    def __init__(self, db: sqlite_utils.Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._admins = {
            "telegram": {str(i) for i in settings.telegram.admin_ids},
            "discord": {str(i) for i in settings.discord.admin_ids},
        }

    def is_admin(self, platform: str, platform_user_id: str | int) -> bool:
        return str(platform_user_id) in self._admins.get(platform, set())

    def stats(self) -> BotStats:
        def count(sql: str, params: list | None = None) -> int:
            return self.db.execute(sql, params or []).fetchone()[0]

        jobs_by_state = {
            state: n for state, n in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        }
        return BotStats(
            users=count("SELECT COUNT(*) FROM users WHERE forgotten_at IS NULL"),
            banned=count("SELECT COUNT(*) FROM users WHERE banned = 1"),
            references=count("SELECT COUNT(*) FROM reference_images WHERE active = 1"),
            stickers=count("SELECT COUNT(*) FROM stickers"),
            packs=count("SELECT COUNT(*) FROM packs"),
            embeddings=count("SELECT COUNT(*) FROM embeddings"),
            jobs_by_state=jobs_by_state,
            jobs_last_24h=count("SELECT COUNT(*) FROM jobs WHERE created_at >= ?", [time.time() - DAY_S]),
        )

    def ban(self, platform: str, platform_user_id: str | int) -> UserSummary:
        record = users.get_or_create_user(self.db, platform, _checked_id(platform_user_id))
        users.set_banned(self.db, record.id, True)
        return self.user_summary(platform, platform_user_id)

    def unban(self, platform: str, platform_user_id: str | int) -> UserSummary:
        record = self._existing(platform, platform_user_id)
        users.set_banned(self.db, record.id, False)
        return self.user_summary(platform, platform_user_id)

    def set_quota(self, platform: str, platform_user_id: str | int, quota: int | None) -> UserSummary:
        """`quota` stickers per day for this user; None goes back to the configured default."""
        if quota is not None and not 0 <= quota <= 100_000:
            raise UserError(
                "The quota must be a number of stickers per day from 0 to 100000, or 'default'.", code="bad_quota"
            )
        record = users.get_or_create_user(self.db, platform, _checked_id(platform_user_id))
        users.set_daily_quota(self.db, record.id, quota)
        return self.user_summary(platform, platform_user_id)

    def user_summary(self, platform: str, platform_user_id: str | int) -> UserSummary:
        record = self._existing(platform, platform_user_id)
        recent = self.db.execute(
            "SELECT COUNT(*) FROM jobs WHERE user_id = ? AND created_at >= ?", [record.id, time.time() - DAY_S]
        ).fetchone()[0]
        overridden = record.daily_quota is not None
        return UserSummary(
            platform,
            record.platform_user_id,
            record.display_name,
            record.banned,
            record.daily_quota if overridden else self.settings.limits.daily_quota,
            overridden,
            recent,
        )

    def _existing(self, platform: str, platform_user_id: str | int):
        record = users.find_user(self.db, platform, _checked_id(platform_user_id))
        if record is None:
            raise UserError(f"I don't know {platform} user {platform_user_id}.", code="unknown_user")
        return record


def _checked_id(platform_user_id: str | int) -> str:
    text = str(platform_user_id).strip()
    if not text or len(text) > 64 or not text.isdigit():
        raise UserError(f"{text[:20]!r} is not a user id: give the numeric id of the user.", code="bad_user_id")
    return text
