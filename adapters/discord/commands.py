"""The members' slash commands and the "Use as my sticker reference" message menu.

Each callback parses the interaction, calls `bot/`, and answers. Bad input is answered
privately (ephemeral) and stores nothing; `UserError`s raised here reach the member
through `StickerCommandTree.on_error` (app.py).
"""

from __future__ import annotations

import asyncio
import io
import logging

import discord
from discord import app_commands

from adapters.discord.buttons import forget_view
from adapters.discord.context import deps, queue_and_track, send_ephemeral, user_ref
from adapters.discord.server_stickers import add_server_sticker
from bot.errors import UserError
from bot.exports.builder import encode_export, select_export
from bot.schema.prompt_parser import suggest_prompts
from bot.service import help_text

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")
CHOICE_MAX = 100  # Discord's limit on an autocomplete choice's name and value
everywhere = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)


def discord_help() -> str:
    return (help_text("/setref with the picture attached, or right-click a message with your picture → "
                      "Apps → Use as my sticker reference")
            + "\n\nUnder each sticker: 🔁 Again, ➕ Add to server, 🗑️ Delete (only you can press them)."
            + "\n/sticker-add <name> adds your newest sticker to this server's stickers "
              "(you and I both need Manage Expressions)."
            + "\n/makepack draws a whole pack as a gallery; members who manage the server's stickers pick "
              "some to add.")


# -- /setref and the message menu --------------------------------------------------------------
async def save_reference_from(interaction: discord.Interaction, attachment: discord.Attachment) -> None:
    """Checks what Discord tells us before downloading, then lets `bot/` validate the bytes."""
    d = deps(interaction)
    limit = d.settings.limits.max_upload_bytes
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith("image/"):
        raise UserError("That file is not a picture. Attach a PNG, JPEG, WebP or GIF image of your character.",
                        code="not_image")
    if kind and kind not in IMAGE_TYPES:
        raise UserError(f"I can't read {kind} pictures. Please send a PNG, JPEG, WebP or GIF.", code="image_type")
    if attachment.size > limit:
        raise UserError(f"That picture is {attachment.size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB. "
                        "Please send a smaller one.", code="too_big")
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        data = await attachment.read()
    except discord.HTTPException as exc:
        log.warning("attachment download failed", extra={"status": exc.status})
        await send_ephemeral(interaction, "I could not download that picture from Discord. Please try again.")
        return
    saved = await d.service.set_reference_async(user_ref(interaction), data)
    await send_ephemeral(interaction, saved.user_message())


@app_commands.command(name="setref", description="Save your character: attach one picture of it")
@app_commands.describe(image="A picture of your character; a plain background works best")
@everywhere
async def setref(interaction: discord.Interaction, image: discord.Attachment) -> None:
    await save_reference_from(interaction, image)


@app_commands.context_menu(name="Use as my sticker reference")
@everywhere
async def use_as_reference(interaction: discord.Interaction, message: discord.Message) -> None:
    if message.author.id != interaction.user.id:
        raise UserError("Only pictures you posted yourself can become your character.", code="not_author")
    pictures = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    if not pictures:
        raise UserError("That message has no picture attached. Use this on a message with an image.",
                        code="no_picture")
    await save_reference_from(interaction, pictures[0])


# -- /mysticker /again ------------------------------------------------------------------------
@app_commands.command(name="mysticker", description="A new sticker of your character, e.g. happy waving beach")
@app_commands.describe(prompt="Emotion, action, background… e.g. happy waving beach")
@everywhere
async def mysticker(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 200]) -> None:
    d = deps(interaction)
    await queue_and_track(interaction, lambda chat: d.service.request_sticker(user_ref(interaction), prompt, chat))


@mysticker.autocomplete("prompt")
async def mysticker_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=text, value=text) for text in suggest_prompts(current) if len(text) <= CHOICE_MAX]


@app_commands.command(name="again", description="Another take of your last sticker")
@everywhere
async def again(interaction: discord.Interaction) -> None:
    d = deps(interaction)
    await queue_and_track(interaction, lambda chat: d.service.again(user_ref(interaction), chat))


# -- /sticker-add ------------------------------------------------------------------------------
@app_commands.command(name="sticker-add", description="Add your newest sticker to this server's stickers")
@app_commands.describe(name="The sticker's name in this server (2–30 characters)")
@app_commands.guild_only()
async def sticker_add(interaction: discord.Interaction, name: app_commands.Range[str, 2, 30]) -> None:
    d = deps(interaction)
    user_id = d.service.user_id(user_ref(interaction))
    newest = d.service.stickers.use(user_id)
    if newest is None:
        raise UserError("You have no sticker yet. Make one with /mysticker first.", code="no_sticker")
    await add_server_sticker(interaction, user_id, newest, name)


# -- /makepack /export ------------------------------------------------------------------------
@app_commands.command(name="makepack", description="A whole pack of your character: every emotion, one gallery")
@app_commands.describe(size="How many stickers (12 if you leave it out)", words="Added to every sticker, e.g. cozy winter")
@everywhere
async def makepack(interaction: discord.Interaction, size: app_commands.Range[int, 1, 50] | None = None,
                   words: app_commands.Range[str, 0, 150] | None = None) -> None:
    d = deps(interaction)
    if d.packs is None:
        raise UserError("Packs are not available on this bot.", code="no_packs")
    text = " ".join(t for t in (str(size) if size else "", (words or "").strip()) if t)
    await queue_and_track(interaction, lambda chat: d.packs.make_pack(user_ref(interaction), text, chat))


@app_commands.command(name="export", description="Your pack as a file for WhatsApp or Signal")
@app_commands.describe(format="whatsapp: a .wastickers file; signal: a zip for Signal Desktop; png: the pictures")
@app_commands.choices(format=[app_commands.Choice(name=n, value=n) for n in ("whatsapp", "signal", "png-zip")])
@everywhere
async def export(interaction: discord.Interaction, format: app_commands.Choice[str]) -> None:
    d = deps(interaction)
    user = user_ref(interaction)
    request = select_export(d.db, d.settings, d.service.user_id(user), user.display_name, format.value)
    await interaction.response.defer(ephemeral=True, thinking=True)
    exported = await asyncio.to_thread(encode_export, request)  # dozens of encodes: off the event loop
    await interaction.followup.send(exported.user_message(), ephemeral=True,
                                    file=discord.File(io.BytesIO(exported.data), filename=exported.name))


# -- /status /forget /help ---------------------------------------------------------------------
@app_commands.command(name="status", description="Where your stickers are in the queue")
@everywhere
async def status(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, deps(interaction).service.status(user_ref(interaction)))


@app_commands.command(name="forget", description="Delete your character and everything stored for you")
@everywhere
async def forget(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, "Delete your character, its learned version, your queued stickers and every "
                                      "sticker I stored for you? This cannot be undone.",
                         view=forget_view(interaction.user.id, deps(interaction).clock()))


@app_commands.command(name="help", description="What I do, and the words I understand")
@everywhere
async def help_command(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, discord_help())


COMMANDS = (setref, use_as_reference, mysticker, again, sticker_add, makepack, export, status, forget, help_command)
