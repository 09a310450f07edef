"""A finished /makepack on Discord: a gallery of its stickers, and a menu to add chosen ones to the server.

The stickers go out as inline WebP attachments, at most 10 per message (Discord's limit on
files per message, bot.sticker_spec.DISCORD_FILES_PER_MESSAGE). In a server each message
carries a select menu listing its stickers: members who may manage the server's stickers
(Manage or Create Expressions) pick some, and they are uploaded as server stickers while
slots last (adapters/discord/server_stickers.py). The menu is a `DynamicItem`: the owner's
Discord id is in its custom id and the sticker ids are its options' values, so it works
after a restart; only stickers of that owner can be picked through it.
"""

from __future__ import annotations

import io

import discord

from adapters.discord.context import deps, send_ephemeral
from adapters.discord.server_stickers import add_server_stickers, check_can_add
from bot.errors import UserError
from bot.messages import PackInfo, StickerOut
from bot.sticker_spec import DISCORD_FILES_PER_MESSAGE

OPTION_LABEL_MAX = 100  # Discord's limit on a select option's label


def gallery_pages(out: list[StickerOut]) -> list[list[StickerOut]]:
    """The pack split into messages of at most DISCORD_FILES_PER_MESSAGE stickers."""
    step = DISCORD_FILES_PER_MESSAGE
    return [out[i : i + step] for i in range(0, len(out), step)]


def gallery_text(owner_id: int, pack: PackInfo, page: int, pages: int, in_guild: bool) -> str:
    if page > 0:
        return f"({page + 1}/{pages})"
    missing = f" ({pack.failed} could not be made)" if pack.failed else ""
    words = f" “{pack.words}”" if pack.words else ""
    text = f"🎉 <@{owner_id}>, your pack{words} is ready: {pack.made} stickers{missing}."
    if in_guild:
        text += " Members who can manage this server's stickers can add some with the menu under each gallery."
    return text + " /export whatsapp or /export signal takes it to those apps."


def files_of(webps: list[bytes]) -> list[discord.File]:
    return [discord.File(io.BytesIO(data), filename=f"sticker-{n}.webp") for n, data in enumerate(webps, start=1)]


def pack_view(owner_id: int, page: list[StickerOut], first_number: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PackSelect(owner_id, page, first_number))
    return view


class PackSelect(discord.ui.DynamicItem[discord.ui.Select], template=r"pks:(?P<owner>\d+)"):
    def __init__(
        self,
        owner_id: int,
        page: list[StickerOut] | None = None,
        first_number: int = 1,
        item: discord.ui.Select | None = None,
    ) -> None:
        if item is None:
            options = [
                discord.SelectOption(label=_label(first_number + i, s), value=str(s.sticker_id), emoji=s.emoji or None)
                for i, s in enumerate(page or [])
            ]
            item = discord.ui.Select(
                custom_id=f"pks:{owner_id}",
                placeholder="Add to this server's stickers…",
                min_values=1,
                max_values=max(1, len(options)),
                options=options,
            )
        super().__init__(item)
        self.owner_id = owner_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select, match):
        return cls(int(match["owner"]), item=item)

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            check_can_add(interaction)
            d = deps(interaction)
            owner_id, chosen = d.service.stickers.of_platform_user(
                "discord", str(self.owner_id), (int(v) for v in self.item.values)
            )
            if not chosen:
                raise UserError(
                    "Those stickers are gone (their owner deleted them, or used /forget).", code="no_sticker"
                )
        except UserError as exc:
            await send_ephemeral(interaction, exc.user_message)
            return
        await add_server_stickers(interaction, owner_id, chosen)


def _label(number: int, sticker: StickerOut) -> str:
    return f"{number}. {sticker.description or 'sticker'}"[:OPTION_LABEL_MAX]
