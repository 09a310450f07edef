"""/setref: a picture of the user's character, as a caption, a reply, or in a conversation."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, Update
from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

from adapters.telegram.handlers.common import deps, reply, user_ref
from bot.errors import UserError

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile limit
SETREF_TIMEOUT_S = 300

# /setref conversation states
WAITING_PICTURE = 1


@dataclass(frozen=True)
class PictureSource:
    file_id: str
    file_size: int | None
    kind: str  # photo | document | sticker


def picture_in(message: Message | None) -> PictureSource | None:
    """The picture a message carries; None if it has none. Raises UserError for things that
    look like a picture attempt but cannot be one (a PDF, an animated sticker)."""
    if message is None:
        return None
    if message.photo:
        biggest = message.photo[-1]
        return PictureSource(biggest.file_id, biggest.file_size, "photo")
    if message.document is not None:
        document = message.document
        if not (document.mime_type or "").startswith("image/"):
            kind = document.mime_type or "unknown type"
            raise UserError(
                f"That file ({document.file_name or kind}) is not a picture. Send a PNG, JPEG or "
                "WebP image, a photo, or a static sticker.",
                code="not_image",
            )
        return PictureSource(document.file_id, document.file_size, "document")
    if message.sticker is not None:
        sticker = message.sticker
        if sticker.is_animated or sticker.is_video:
            which = "an animated" if sticker.is_animated else "a video"
            raise UserError(
                f"That is {which} sticker: I can't use animated or video stickers as a character. "
                "Send a static sticker, a photo or an image file instead.",
                code="animated_sticker",
            )
        return PictureSource(sticker.file_id, sticker.file_size, "sticker")
    return None


def replied_picture(update: Update, replied: Message | None) -> PictureSource | None:
    """The picture of the message /setref replies to, only when the user who sent /setref sent
    it: another member's photo, or a sticker the bot made (for anyone), never becomes
    someone's character."""
    source = picture_in(replied)
    if source is not None and (replied.from_user is None or replied.from_user.id != update.effective_user.id):
        raise UserError(
            "Only pictures you sent yourself can become your character. Send your picture with "
            "/setref as its caption, or reply /setref to your own picture.",
            code="not_author",
        )
    return source


async def download_picture(context: ContextTypes.DEFAULT_TYPE, source: PictureSource) -> bytes:
    limit = min(deps(context).settings.limits.max_upload_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    too_big = UserError(
        f"That file is too big: the limit is {limit / 1_000_000:.0f} MB. Send a smaller picture.", code="too_big"
    )
    if source.file_size is not None and source.file_size > limit:
        raise too_big  # refused before downloading anything
    file = await context.bot.get_file(source.file_id)
    if file.file_size is not None and file.file_size > limit:
        raise too_big
    data = bytes(await file.download_as_bytearray())
    if len(data) > limit:
        raise too_big
    return data


async def save_reference(update: Update, context: ContextTypes.DEFAULT_TYPE, source: PictureSource) -> None:
    data = await download_picture(context, source)
    saved = await deps(context).service.set_reference_async(user_ref(update), data)
    await reply(update, saved.user_message())


async def setref(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """/setref as a photo caption, as a reply to a picture, or alone (then wait for one)."""
    message = update.effective_message
    try:
        source = picture_in(message) or replied_picture(update, message.reply_to_message)
        if source is None:
            await reply(
                update,
                "Send me one picture of your character now: a photo, an image file or a static "
                "sticker. A plain background works best. (/cancel to stop)",
            )
            return WAITING_PICTURE
        await save_reference(update, context, source)
    except UserError as exc:
        await reply(update, exc.user_message)
    return ConversationHandler.END


async def setref_picture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    try:
        await save_reference(update, context, picture_in(update.effective_message))
    except UserError as exc:
        await reply(update, f"{exc.user_message}\nSend another picture, or /cancel.")
        return WAITING_PICTURE
    return ConversationHandler.END


async def setref_not_a_picture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await reply(
        update,
        "I'm waiting for a picture of your character (a photo, an image file or a static "
        "sticker). Send /cancel to stop.",
    )
    return WAITING_PICTURE


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    await reply(update, "OK, I stopped waiting for a picture.")
    return ConversationHandler.END


class CaptionCommand(filters.MessageFilter):
    """A caption that starts with /command or /command@this_bot (a photo sent with /setref)."""

    def __init__(self, command: str) -> None:
        super().__init__(name=f"CaptionCommand({command})")
        self.command = command.lower()

    def filter(self, message: Message) -> bool:
        entities = message.caption_entities
        if not message.caption or not entities or entities[0].type != "bot_command" or entities[0].offset != 0:
            return False
        command, _, addressee = message.parse_caption_entity(entities[0])[1:].partition("@")
        return command.lower() == self.command and (
            not addressee or addressee.lower() == (message.get_bot().username or "").lower()
        )


def setref_conversation() -> ConversationHandler:
    return ConversationHandler(
        entry_points=[
            CommandHandler("setref", setref),
            MessageHandler(CaptionCommand("setref") & (filters.PHOTO | filters.Document.ALL), setref),
        ],
        states={
            WAITING_PICTURE: [
                MessageHandler(filters.PHOTO | filters.Document.ALL | filters.Sticker.ALL, setref_picture),
                # In a group, other chatter while we wait is none of our business.
                MessageHandler(filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, setref_not_a_picture),
            ],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        allow_reentry=True,
        conversation_timeout=SETREF_TIMEOUT_S,
        name="setref",
    )
