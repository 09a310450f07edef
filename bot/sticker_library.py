"""A user's stored stickers as the adapters use them: the one a button is under, the newest,
those a gallery lists; deleting one; and what a platform did with one (sent it, gave its file
an id). Platform adapters reach the sticker table only through here (imports run adapters ->
bot -> storage)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from bot.errors import UserError
from storage import stickers as sticker_rows
from storage import users
from storage.records import Sticker

__all__ = ["Sticker", "StickerLibrary"]


class StickerLibrary:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def use(self, user_id: int, sticker_id: int | None = None) -> Sticker | None:
        """The sticker its owner is doing something with (None: their newest), marked as used
        now so retention keeps it; None when it is not theirs or gone."""
        return sticker_rows.use_sticker(self.db, user_id, sticker_id)

    def own(self, user_id: int, sticker_id: int) -> Sticker:
        """`use`, for a button under a sticker: a friendly refusal when it is gone."""
        sticker = self.use(user_id, sticker_id)
        if sticker is None:
            raise UserError("That sticker is gone (deleted, or /forget was used).", code="no_sticker")
        return sticker

    def get_many(self, user_id: int, sticker_ids: Iterable[int]) -> list[Sticker]:
        """Those of `sticker_ids` that are still the user's, in the order asked."""
        found = (sticker_rows.get_sticker(self.db, user_id, i) for i in sticker_ids)
        return [s for s in found if s is not None]

    def of_platform_user(
        self, platform: str, platform_user_id: str, sticker_ids: Iterable[int]
    ) -> tuple[int | None, list[Sticker]]:
        """(the owner's user id, their stickers among `sticker_ids`) for a platform user, who
        is not created when unknown: (None, [])."""
        owner = users.find_user(self.db, platform, platform_user_id)
        if owner is None:
            return None, []
        return owner.id, self.get_many(owner.id, sticker_ids)

    def delete(self, user_id: int, sticker_id: int) -> bool:
        return sticker_rows.delete_sticker(self.db, user_id, sticker_id)

    # -- what the platforms did with them (delivery records) ---------------------------------
    def sent_ids(self, user_id: int, job_id: str) -> set[int]:
        """Which of the job's stickers were already sent (a retried delivery skips them)."""
        return sticker_rows.sent_sticker_ids(self.db, user_id, job_id)

    def record_sent(self, user_id: int, sticker_id: int, message_id: str | int | None) -> bool:
        """The platform accepted this sticker's message."""
        return sticker_rows.record_sent(self.db, user_id, sticker_id, message_id)

    def record_file_id(self, user_id: int, sticker_id: int, platform: str, file_id: str) -> bool:
        """Remember the id the platform gave the uploaded file, to resend it cheaply."""
        return sticker_rows.set_platform_file_id(self.db, user_id, sticker_id, platform, file_id)
