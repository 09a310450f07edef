"""Uploading a member's sticker as a server sticker (`/sticker-add`, the ➕ button).

Discord's rules (Create Guild Sticker): a PNG/APNG/GIF/Lottie file up to 512 KiB (we send a
320 × 320 PNG, the size Discord shows), a name of 2–30 characters, a description that is
empty or 2–100 characters, and tags: the Discord name of the unicode emoji of the sticker's
expression (2–200 characters; "blush" for 😊), what Discord's upload dialog calls "Related
emoji". The member and the bot both need Manage Expressions (or Create Expressions, its
2023 split), and the server needs a free slot: 5, 15, 30 or 60 by boost level.
"""

from __future__ import annotations

import asyncio
import io
import logging

import discord

from adapters.discord.context import deps, send_ephemeral
from bot.errors import UserError
from bot.schema.vocabulary import emoji_for_emotion
from bot.sticker_spec import DISCORD_STICKER_DESCRIPTION_MAX, discord_sticker_name, to_discord_server_sticker

log = logging.getLogger(__name__)

MAX_STICKERS_REACHED = 30039  # Discord's JSON error code
# Discord's names of the emotions' emoji (bot/vocabulary.py), for the sticker's tags.
DISCORD_EMOJI_NAMES = {"😊": "blush", "😢": "cry", "😠": "angry", "😮": "open_mouth", "😴": "sleeping",
                       "😍": "heart_eyes", "🙂": "slight_smile"}
DESCRIPTION_MAX = DISCORD_STICKER_DESCRIPTION_MAX


async def add_server_sticker(interaction: discord.Interaction, user_id: int, sticker, name: str | None = None) -> None:
    """Check, upload, and tell the member (privately) how it went. `user_id` is the
    member's id in storage (the caller already looked it up, refusing banned members)."""
    await add_server_stickers(interaction, user_id, [sticker], name)


async def add_server_stickers(interaction: discord.Interaction, user_id: int, chosen: list, name: str | None = None
                              ) -> None:
    """Upload `chosen` (stickers of storage user `user_id`) as server stickers, as many as the
    server has free slots for, and tell the member who asked (privately) how it went: how
    many went in, and how many did not fit. `name` names a single sticker."""
    check_can_add(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    d = deps(interaction)
    added = []
    try:
        guild = await interaction.client.fetch_guild(interaction.guild_id)  # fresh count of used slots
        used, limit = len(guild.stickers), guild.sticker_limit
        if used >= limit:
            raise UserError(_full_message(used, limit), code="no_slots")
        for sticker in chosen[:limit - used]:
            png = await asyncio.to_thread(to_discord_server_sticker, sticker.image)
            created = await guild.create_sticker(
                name=discord_sticker_name(name or _default_name(sticker)),
                description=_description(sticker),
                emoji=emoji_tag(sticker),
                file=discord.File(io.BytesIO(png), filename="sticker.png"),
                reason=f"stickerbot: added by {interaction.user} ({interaction.user.id})",
            )
            d.service.stickers.record_file_id(user_id, sticker.id, f"discord_guild:{interaction.guild_id}",
                                              str(created.id))
            added.append(created)
    except UserError as exc:
        await send_ephemeral(interaction, exc.user_message)
        return
    except discord.Forbidden:
        await send_ephemeral(interaction, "Discord refused: I may be missing the Manage Expressions permission here.")
        return
    except discord.HTTPException as exc:
        full = exc.code == MAX_STICKERS_REACHED
        if not full:
            log.warning("server sticker upload failed", extra={"guild_id": interaction.guild_id, "status": exc.status,
                                                                "code": exc.code, "error": exc.text})
        if not added:
            await send_ephemeral(interaction, _full_message() if full else
                                 "Discord did not take the sticker right now. Please try again later.")
            return
        # some went in before Discord stopped taking them: say which below
    log.info("server stickers added", extra={"guild_id": interaction.guild_id, "count": len(added)})
    left = len(chosen) - len(added)
    if len(chosen) == 1 and added:
        text = (f"Added “{added[0].name}” to this server's stickers ({used + 1}/{limit} slots used). "
                "Everyone here can send it now.")
    else:
        text = (f"Added {len(added)} stickers to this server's stickers ({used + len(added)}/{limit} slots used). "
                "Everyone here can send them now.")
    if left:
        text += f" {left} did not fit: {_full_message(used + len(added), limit)}"
    await send_ephemeral(interaction, text)


def check_can_add(interaction: discord.Interaction) -> None:
    """Server stickers need a server, and Manage (or Create) Expressions for both the member and the bot."""
    if interaction.guild_id is None:
        raise UserError("Server stickers live in servers: use this in a server channel, not in DMs.",
                        code="not_in_guild")
    if not can_add_stickers(interaction.permissions):
        raise UserError("Adding server stickers needs the Manage Expressions permission, and you don't have it "
                        "here. Ask a server admin.", code="member_permission")
    if not can_add_stickers(interaction.app_permissions):
        raise UserError("I need the Manage Expressions permission in this server to add stickers. A server admin "
                        "can give it to my role.", code="bot_permission")


def can_add_stickers(permissions: discord.Permissions) -> bool:
    # Discord split "Manage Expressions" (everyone's) from "Create Expressions" (one's own) in
    # 2023; either lets a member or bot upload a sticker.
    return permissions.manage_expressions or permissions.create_expressions


def emoji_tag(sticker) -> str:
    emoji = sticker.emoji or emoji_for_emotion((sticker.request or {}).get("emotion", ""))
    return DISCORD_EMOJI_NAMES.get(emoji, "slight_smile")


def _full_message(used: int | None = None, limit: int | None = None) -> str:
    count = f" ({used}/{limit} used)" if limit is not None else ""
    return (f"This server has no free sticker slots{count}. Remove a server sticker first, or boost the server "
            "for more slots (5, 15, 30 or 60 by boost level).")


def _default_name(sticker) -> str:
    tags = sticker.request or {}
    return " ".join(t for t in (tags.get("emotion"), tags.get("action")) if t) or "my sticker"


def _description(sticker) -> str:
    tags = sticker.request or {}
    text = ", ".join(t for t in (tags.get("emotion"), tags.get("action"), tags.get("background")) if t)
    text = text[:DESCRIPTION_MAX]
    return text if len(text) >= 2 else ""
