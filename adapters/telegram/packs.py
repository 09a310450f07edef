"""A user's personal Telegram sticker set: naming rules, create/add, full and deleted sets.

Telegram's rules for a set name (https://core.telegram.org/bots/api#createnewstickerset):
1–64 characters, English letters, digits and underscores, starting with a letter, no
consecutive underscores, ending in `_by_<bot username>`. A static set holds at most 120
stickers. The user owns the set and can delete it in @Stickers at any time; we find out
when Telegram no longer knows the name, and the next /pack makes a fresh set with a new
name (a deleted name may stay reserved, so it is not reused).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import sqlite_utils
from telegram import Bot, InputFile, InputSticker
from telegram.constants import StickerFormat
from telegram.error import BadRequest, Forbidden

from bot.errors import UserError
from bot.messages import UserRef
from bot.platform_packs import Pack, PlatformPacks
from bot.settings import Settings
from bot.sticker_library import Sticker, StickerLibrary
from bot.sticker_spec import (
    TELEGRAM_SET,
    pack_keywords,
    telegram_set_name_problems,
    telegram_title,
    to_telegram_sticker,
    to_telegram_thumbnail,
)

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_STATIC_STICKERS = TELEGRAM_SET.max_stickers
NAME_ATTEMPTS = 8


def set_name(platform_user_id: str | int, bot_username: str, generation: int = 1) -> str:
    """`u<telegram user id>[_<generation>]_by_<bot username>`, checked against the rules."""
    stem = f"u{platform_user_id}" + (f"_{generation}" if generation > 1 else "")
    name = f"{stem}_by_{bot_username}"
    problems = telegram_set_name_problems(name, bot_username)
    if problems:
        raise ValueError(f"cannot make a sticker set name for bot {bot_username!r}: {'; '.join(problems)}")
    return name


def set_link(name: str) -> str:
    return f"https://t.me/addstickers/{name}"


def set_title(template: str, display_name: str) -> str:
    return telegram_title(template.format(name=display_name.strip() or "My"))


@dataclass(frozen=True)
class PackOutcome:
    """status: created | added | already | full. `added`/`left_out`: of the stickers asked
    for, how many went in and how many did not fit (a set holds 120)."""

    status: str
    name: str
    count: int
    added: int = 1
    left_out: int = 0

    @property
    def link(self) -> str:
        return set_link(self.name)

    def user_message(self) -> str:
        if self.status == "created":
            return f"Made your own sticker pack and added the sticker. Add the pack here: {self.link}"
        if self.status == "added":
            return f"Added to your pack ({self.count}/{MAX_STATIC_STICKERS}): {self.link}"
        if self.status == "already":
            return f"That sticker is already in your pack: {self.link}"
        return (f"Your pack is full ({MAX_STATIC_STICKERS} stickers, Telegram's limit). Remove some in @Stickers "
                f"and try again: {self.link}")

    def pack_message(self, made: int, size: int) -> str:
        """What a finished /makepack says: where the new stickers went, what did not fit."""
        missing = f" ({size - made} of the {size} could not be made.)" if made < size else ""
        full = (f"Your sticker set is full ({MAX_STATIC_STICKERS} stickers, Telegram's limit), so "
                f"{self.left_out} new sticker{'s' if self.left_out != 1 else ''} did not fit. Remove some in "
                "@Stickers and press ➕ under the ones you want, or take them elsewhere with /export whatsapp.")
        if self.status == "full":
            return full + f" {self.link}{missing}"
        where = {"created": "Your new sticker pack is ready",
                 "already": "Your pack already has them"}.get(self.status,
                                                                 f"Added to your pack ({self.count}/{MAX_STATIC_STICKERS})")
        text = f"{where}: {self.added} new stickers. Add it here: {self.link}{missing}"
        return text + (" " + full if self.left_out else "")


class TelegramPacks:
    """/pack and /mypack for one bot. One pack operation per user at a time."""

    def __init__(self, db: sqlite_utils.Database, settings: Settings) -> None:
        self.records = PlatformPacks(db, PLATFORM)
        self.stickers = StickerLibrary(db)
        self.settings = settings
        self._locks: dict[int, asyncio.Lock] = {}

    def current_pack(self, user_id: int) -> Pack | None:
        return self.records.current(user_id)

    async def add(self, bot: Bot, user: UserRef, user_id: int, sticker_id: int | None = None) -> PackOutcome:
        """Add the sticker (default: the user's newest) to their set, creating the set if needed."""
        # A lock per user who ever used /pack: a few bytes each, and two quick presses of
        # "Add to pack" cannot create two sets.
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            return await self._add(bot, user, user_id, sticker_id)

    async def _add(self, bot: Bot, user: UserRef, user_id: int, sticker_id: int | None) -> PackOutcome:
        sticker = self._sticker(user_id, sticker_id)
        pack = self.current_pack(user_id)
        if pack is not None:
            remote_count = await self._remote_count(bot, pack)
            if remote_count is None:  # the user deleted the set
                log.info("sticker set gone, making a new one", extra={"user_id": user_id, "set": pack.name})
                self.records.forget(user_id, pack.id)
                pack = None
            else:
                self.records.set_count(user_id, pack.id, remote_count)
                if sticker.id in self.records.sticker_ids(user_id, pack.id):
                    return PackOutcome("already", pack.name, remote_count)
                if remote_count >= MAX_STATIC_STICKERS:
                    return PackOutcome("full", pack.name, remote_count)

        owner = int(user.platform_user_id)
        input_sticker = await self._upload(bot, owner, sticker)
        if pack is not None:
            try:
                await bot.add_sticker_to_set(user_id=owner, name=pack.name, sticker=input_sticker)
            except BadRequest as exc:
                if "too_much" in exc.message.lower() or "too much" in exc.message.lower():
                    self.records.set_count(user_id, pack.id, MAX_STATIC_STICKERS)
                    return PackOutcome("full", pack.name, MAX_STATIC_STICKERS)
                if "stickerset_invalid" not in exc.message.lower():
                    raise _telegram_refused(exc) from exc
                self.records.forget(user_id, pack.id)  # deleted between our check and the add
                pack = None
            else:
                self.records.add_sticker(user_id, pack.id, sticker.id, platform_file_id=input_sticker.sticker)
                count = self.current_pack(user_id).sticker_count
                return PackOutcome("added", pack.name, count)

        pack = await self._create(bot, user, user_id, owner, [input_sticker])
        self.records.add_sticker(user_id, pack.id, sticker.id, platform_file_id=input_sticker.sticker)
        return PackOutcome("created", pack.name, 1)

    async def add_many(self, bot: Bot, user: UserRef, user_id: int, sticker_ids: list[int]) -> PackOutcome:
        """A finished /makepack into the user's set: a new set is created with up to 50 of them in
        one createNewStickerSet (then its 100 × 100 thumbnail is set), an existing one gets them
        one by one until it holds 120. Stickers already in the set are skipped, so a retry after
        a failure part-way adds only the rest."""
        async with self._locks.setdefault(user_id, asyncio.Lock()):
            return await self._add_many(bot, user, user_id, sticker_ids)

    async def _add_many(self, bot: Bot, user: UserRef, user_id: int, sticker_ids: list[int]) -> PackOutcome:
        chosen = self.stickers.get_many(user_id, sticker_ids)
        if not chosen:
            raise UserError("Those stickers are gone (deleted, or /forget was used).", code="no_sticker")
        owner = int(user.platform_user_id)
        pack = self.current_pack(user_id)
        count = 0
        if pack is not None:
            remote_count = await self._remote_count(bot, pack)
            if remote_count is None:  # the user deleted the set
                self.records.forget(user_id, pack.id)
                pack = None
            else:
                count = remote_count
                self.records.set_count(user_id, pack.id, count)
        if pack is not None:
            present = set(self.records.sticker_ids(user_id, pack.id))
            chosen = [s for s in chosen if s.id not in present]
            if not chosen:  # all in already (a retry of a delivery that had got through)
                return PackOutcome("already", pack.name, count, added=0)
        todo = list(chosen)
        status, added = "added", 0
        if pack is None:
            first = todo[:TELEGRAM_SET.max_per_call]
            inputs = [await self._upload(bot, owner, s) for s in first]
            pack = await self._create(bot, user, user_id, owner, inputs)
            for sticker, input_sticker in zip(first, inputs, strict=True):
                self.records.add_sticker(user_id, pack.id, sticker.id, platform_file_id=input_sticker.sticker)
            await self._set_thumbnail(bot, owner, pack, first[0])
            status, added, count, todo = "created", len(first), len(first), todo[len(first):]
        for sticker in todo:
            if count >= MAX_STATIC_STICKERS:
                break
            input_sticker = await self._upload(bot, owner, sticker)
            try:
                await bot.add_sticker_to_set(user_id=owner, name=pack.name, sticker=input_sticker)
            except BadRequest as exc:
                if "too_much" in exc.message.lower() or "too much" in exc.message.lower():
                    count = MAX_STATIC_STICKERS
                    break
                raise _telegram_refused(exc) from exc
            self.records.add_sticker(user_id, pack.id, sticker.id, platform_file_id=input_sticker.sticker)
            count, added = count + 1, added + 1
        self.records.set_count(user_id, pack.id, count)
        left_out = len(chosen) - added
        if added == 0 and left_out:
            status = "full"
        return PackOutcome(status, pack.name, count, added=added, left_out=left_out)

    async def _set_thumbnail(self, bot: Bot, owner: int, pack: Pack, sticker: Sticker) -> None:
        """The set's 100 × 100 thumbnail from its first sticker; without one Telegram shows the
        first sticker itself, so a refusal is only logged."""
        thumbnail = await asyncio.to_thread(to_telegram_thumbnail, sticker.image)
        try:
            await bot.set_sticker_set_thumbnail(name=pack.name, user_id=owner, format=StickerFormat.STATIC,
                                                thumbnail=InputFile(thumbnail, filename="thumbnail.webp"))
        except (BadRequest, Forbidden) as exc:
            log.warning("set thumbnail refused", extra={"set": pack.name, "error": exc.message})

    def _sticker(self, user_id: int, sticker_id: int | None) -> Sticker:
        sticker = self.stickers.use(user_id, sticker_id)
        if sticker is None and sticker_id is None:
            raise UserError("You have no sticker to add yet. Make one with /mysticker happy waving first.",
                            code="no_sticker")
        if sticker is None:
            raise UserError("That sticker is gone (deleted, or /forget was used).", code="no_sticker")
        return sticker

    async def _remote_count(self, bot: Bot, pack: Pack) -> int | None:
        """How many stickers Telegram has in the set; None when the set no longer exists."""
        try:
            remote = await bot.get_sticker_set(pack.name)
        except BadRequest as exc:
            if "stickerset_invalid" in exc.message.lower() or "not found" in exc.message.lower():
                return None
            raise _telegram_refused(exc) from exc
        return len(remote.stickers)

    async def _upload(self, bot: Bot, owner: int, sticker: Sticker) -> InputSticker:
        webp = await asyncio.to_thread(telegram_webp, sticker.image)
        try:
            uploaded = await bot.upload_sticker_file(user_id=owner, sticker=InputFile(webp, filename="sticker.webp"),
                                                     sticker_format=StickerFormat.STATIC)
        except (BadRequest, Forbidden) as exc:
            raise _telegram_refused(exc) from exc
        return InputSticker(uploaded.file_id, emoji_list=[sticker.emoji or "🙂"], format=StickerFormat.STATIC,
                            keywords=sticker_keywords(sticker))

    async def _create(self, bot: Bot, user: UserRef, user_id: int, owner: int,
                      input_stickers: list[InputSticker]) -> Pack:
        title = set_title(self.settings.telegram.pack_title, user.display_name)
        for generation in range(1, NAME_ATTEMPTS + 1):
            name = set_name(user.platform_user_id, bot.username, generation)
            if self.records.name_taken(name):
                continue
            try:
                await bot.create_new_sticker_set(user_id=owner, name=name, title=title, stickers=input_stickers)
            except BadRequest as exc:
                if "occupied" in exc.message.lower():
                    continue  # e.g. the name of a set the user deleted: try the next one
                raise _telegram_refused(exc) from exc
            except Forbidden as exc:
                raise _telegram_refused(exc) from exc
            pack = self.records.create(user_id, name, title)
            self.records.set_count(user_id, pack.id, len(input_stickers))
            return pack
        raise UserError("I could not find a free name for your sticker pack. Please tell the bot's admin.",
                        code="pack_name")


def sticker_keywords(sticker: Sticker) -> list[str]:
    """Search keywords from the sticker's tags (emotion, action, ...), within Telegram's limits."""
    tags = sticker.request or {}
    words = [tags.get(k, "") for k in ("emotion", "action", "appearance", "background", "composition", "style")]
    return pack_keywords(w for w in words if w and w != "plain")


def telegram_webp(png: bytes) -> bytes:
    """The stored RGBA master as a Telegram static sticker (WebP, 512 px side, ≤ 512 KB)."""
    return to_telegram_sticker(png)


def _telegram_refused(exc: Exception) -> UserError:
    text = getattr(exc, "message", str(exc))
    if "peer_id_invalid" in text.lower() or "user_id_invalid" in text.lower() or isinstance(exc, Forbidden):
        return UserError("Telegram won't let me make a sticker pack for you yet: open a private chat with me, "
                         "press Start, then try /pack again.", code="pack_refused")
    return UserError(f"Telegram refused the sticker pack change ({text}). Please try again later.",
                     code="pack_refused")
