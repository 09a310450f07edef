"""The bot's record of the sticker sets users own on one platform (a Telegram set), and which
of their stickers went into each. The platform is the truth about a set's contents; these rows
mirror what it reported, so a press of "add to pack" knows the set and skips stickers already
in it. Platform adapters reach the packs table only through here."""

from __future__ import annotations

import sqlite_utils

from storage import packs as pack_rows
from storage import users
from storage.records import Pack

__all__ = ["Pack", "PlatformPacks"]


class PlatformPacks:
    def __init__(self, db: sqlite_utils.Database, platform: str) -> None:
        self.db = db
        self.platform = platform

    def current(self, user_id: int) -> Pack | None:
        """The user's newest set on this platform (the one new stickers go into)."""
        owned = pack_rows.packs_for_user(self.db, user_id, self.platform)
        return owned[-1] if owned else None

    def has_any(self, platform_user_id: str) -> bool:
        """Whether this platform user has a set recorded (a known user only; none is created)."""
        record = users.find_user(self.db, self.platform, platform_user_id)
        return record is not None and bool(pack_rows.packs_for_user(self.db, record.id, self.platform))

    def create(self, user_id: int, name: str, title: str) -> Pack:
        return pack_rows.create_pack(self.db, user_id, self.platform, name, title)

    def name_taken(self, name: str) -> bool:
        return pack_rows.name_taken(self.db, self.platform, name)

    def forget(self, user_id: int, pack_id: int) -> bool:
        """The set is gone on the platform (its owner deleted it): drop our record of it."""
        return pack_rows.delete_pack(self.db, user_id, pack_id)

    def set_count(self, user_id: int, pack_id: int, count: int) -> bool:
        return pack_rows.set_sticker_count(self.db, user_id, pack_id, count)

    def sticker_ids(self, user_id: int, pack_id: int) -> list[int]:
        return pack_rows.pack_sticker_ids(self.db, user_id, pack_id)

    def add_sticker(self, user_id: int, pack_id: int, sticker_id: int, *, platform_file_id: str) -> bool:
        return pack_rows.add_sticker_to_pack(self.db, user_id, pack_id, sticker_id, platform_file_id=platform_file_id)
