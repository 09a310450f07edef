"""The members' slash commands and the "Use as my sticker reference" message menu.

Each callback parses the interaction, calls `bot/`, and answers. Bad input is answered
privately (ephemeral) and stores nothing; `UserError`s raised here reach the member
through `StickerCommandTree.on_error` (app.py). Names and descriptions are marked with N_:
Discord shows them in each member's language (adapters/discord/translator.py); the
answers are in the member's language too (the tree's `interaction_check`).
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
from bot import i18n
from bot.errors import UserError
from bot.exports.builder import encode_export, select_export
from bot.i18n import N_, _
from bot.messages import cancel_message, language_changed, language_menu
from bot.schema.prompt_parser import suggest_prompts
from bot.service import help_text

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")
CHOICE_MAX = 100  # Discord's limit on an autocomplete choice's name and value
everywhere = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)


SETREF_HOW = N_("/setref with the picture attached, or right-click a message with your picture → Apps → Use as "
                "my sticker reference")


def discord_help() -> str:
    return "\n".join([
        help_text(SETREF_HOW),
        "",
        _("Under each sticker: 🔁 Again, ➕ Add to server, 🗑️ Delete (only you can press them)."),
        _("/sticker-add <name> adds your newest sticker to this server's stickers (you and I both need Manage "
          "Expressions)."),
        _("/makepack draws a whole pack as a gallery; members who manage the server's stickers pick some to add."),
    ])


# -- /setref and the message menu --------------------------------------------------------------
async def save_reference_from(interaction: discord.Interaction, attachment: discord.Attachment) -> None:
    """Checks what Discord tells us before downloading, then lets `bot/` validate the bytes."""
    d = deps(interaction)
    limit = d.settings.limits.max_upload_bytes
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith("image/"):
        raise UserError(_("That file is not a picture. Attach a PNG, JPEG, WebP or GIF image of your character."),
                        code="not_image")
    if kind and kind not in IMAGE_TYPES:
        raise UserError(_("I can't read {kind} pictures. Please send a PNG, JPEG, WebP or GIF.", kind=kind),
                        code="image_type")
    if attachment.size > limit:
        raise UserError(_("That picture is {size:.1f} MB; the limit is {limit:.0f} MB. Please send a smaller one.",
                          size=attachment.size / 1e6, limit=limit / 1e6), code="too_big")
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        data = await attachment.read()
    except discord.HTTPException as exc:
        log.warning("attachment download failed", extra={"status": exc.status})
        await send_ephemeral(interaction, _("I could not download that picture from Discord. Please try again."))
        return
    saved = await d.service.set_reference_async(user_ref(interaction), data)
    await send_ephemeral(interaction, saved.user_message())


@app_commands.command(name=N_("setref"), description=N_("Save your character: attach one picture of it"))
@app_commands.describe(image=N_("A picture of your character; a plain background works best"))
@app_commands.rename(image=N_("image"))
@everywhere
async def setref(interaction: discord.Interaction, image: discord.Attachment) -> None:
    await save_reference_from(interaction, image)


@app_commands.context_menu(name=N_("Use as my sticker reference"))
@everywhere
async def use_as_reference(interaction: discord.Interaction, message: discord.Message) -> None:
    if message.author.id != interaction.user.id:
        raise UserError(_("Only pictures you posted yourself can become your character."), code="not_author")
    pictures = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
    if not pictures:
        raise UserError(_("That message has no picture attached. Use this on a message with an image."),
                        code="no_picture")
    await save_reference_from(interaction, pictures[0])


# -- /mysticker /again ------------------------------------------------------------------------
@app_commands.command(name=N_("mysticker"), description=N_("A new sticker of your character, e.g. happy waving beach"))
@app_commands.describe(prompt=N_("Emotion, action, background… e.g. happy waving beach"))
@app_commands.rename(prompt=N_("prompt"))
@everywhere
async def mysticker(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 200]) -> None:
    d = deps(interaction)
    await queue_and_track(interaction, lambda chat: d.service.request_sticker(user_ref(interaction), prompt, chat))


@mysticker.autocomplete("prompt")
async def mysticker_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=text, value=text) for text in suggest_prompts(current, language=i18n.current())
            if len(text) <= CHOICE_MAX]


@app_commands.command(name=N_("again"), description=N_("Another take of your last sticker"))
@everywhere
async def again(interaction: discord.Interaction) -> None:
    d = deps(interaction)
    await queue_and_track(interaction, lambda chat: d.service.again(user_ref(interaction), chat))


# -- /sticker-add ------------------------------------------------------------------------------
@app_commands.command(name=N_("sticker-add"), description=N_("Add your newest sticker to this server's stickers"))
@app_commands.describe(name=N_("The sticker's name in this server (2–30 characters)"))
@app_commands.rename(name=N_("name"))
@app_commands.guild_only()
async def sticker_add(interaction: discord.Interaction, name: app_commands.Range[str, 2, 30]) -> None:
    d = deps(interaction)
    user_id = d.service.user_id(user_ref(interaction))
    newest = d.service.stickers.use(user_id)
    if newest is None:
        raise UserError(_("You have no sticker yet. Make one with /mysticker first."), code="no_sticker")
    await add_server_sticker(interaction, user_id, newest, name)


# -- /makepack /export ------------------------------------------------------------------------
@app_commands.command(name=N_("makepack"), description=N_("A whole pack of your character: every emotion, one gallery"))
@app_commands.describe(size=N_("How many stickers (12 if you leave it out)"),
                       words=N_("Added to every sticker, e.g. cozy winter"))
@app_commands.rename(size=N_("size"), words=N_("words"))
@everywhere
async def makepack(interaction: discord.Interaction, size: app_commands.Range[int, 1, 50] | None = None,
                   words: app_commands.Range[str, 0, 150] | None = None) -> None:
    d = deps(interaction)
    if d.packs is None:
        raise UserError(_("Packs are not available on this bot."), code="no_packs")
    text = " ".join(t for t in (str(size) if size else "", (words or "").strip()) if t)
    await queue_and_track(interaction, lambda chat: d.packs.make_pack(user_ref(interaction), text, chat))


@app_commands.command(name=N_("export"), description=N_("Your pack as a file for WhatsApp or Signal"))
@app_commands.describe(format=N_("whatsapp: a .wastickers file; signal: a zip for Signal Desktop; png: the pictures"))
@app_commands.rename(format=N_("format"))
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
@app_commands.command(name=N_("status"), description=N_("Where your stickers are in the queue"))
@everywhere
async def status(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, deps(interaction).service.status(user_ref(interaction)))


@app_commands.command(name=N_("cancel"), description=N_("Take back your newest sticker in the queue, or all of them"))
@app_commands.describe(everything=N_("Cancel every sticker and pack of yours still in the queue"))
@app_commands.rename(everything=N_("all"))
@everywhere
async def cancel(interaction: discord.Interaction, everything: bool = False) -> None:
    d = deps(interaction)
    cancelled = d.service.cancel(user_ref(interaction), everything=everything)
    for request in cancelled:
        await d.sink.cancelled(request.request_id)
    await send_ephemeral(interaction, cancel_message(cancelled))


@app_commands.command(name=N_("language"), description=N_("The language I speak with you"))
@app_commands.describe(choice=N_("Leave out to see the languages; “auto” follows your Discord language"))
@app_commands.rename(choice=N_("language"))
@app_commands.choices(choice=[app_commands.Choice(name=name, value=code) for code, name in i18n.LANGUAGES.items()]
                      + [app_commands.Choice(name="auto", value="auto")])
@everywhere
async def language(interaction: discord.Interaction, choice: app_commands.Choice[str] | None = None) -> None:
    if choice is None:
        await send_ephemeral(interaction, language_menu())
        return
    await send_ephemeral(interaction, language_changed(deps(interaction).service.set_language(
        user_ref(interaction), choice.value)))


@app_commands.command(name=N_("forget"), description=N_("Delete your character and everything stored for you"))
@everywhere
async def forget(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, _("Delete your character, its learned version, your queued stickers and every "
                                        "sticker I stored for you? This cannot be undone."),
                         view=forget_view(interaction.user.id, deps(interaction).clock()))


@app_commands.command(name=N_("help"), description=N_("What I do, and the words I understand"))
@everywhere
async def help_command(interaction: discord.Interaction) -> None:
    await send_ephemeral(interaction, discord_help())


COMMANDS = (setref, use_as_reference, mysticker, again, sticker_add, makepack, export, status, cancel, language,
            forget, help_command)
