"""The Telegram commands: each handler parses the update, calls `bot/`, and replies.

`register(application)` wires them in one place. In groups a command may be addressed as
`/cmd@botname` (PTB's CommandHandler ignores commands for other bots), and replies quote
the command, so the right person gets the answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.error import TelegramError
from telegram.ext import (Application, CallbackQueryHandler, CommandHandler, ContextTypes, ConversationHandler,
                          MessageHandler, filters)

from adapters.telegram.packs import TelegramPacks, set_link
from adapters.telegram.sink import ADD_TO_PACK, AGAIN, DELETE, TelegramSink
from bot import confirmations
from bot.admin import AdminService
from bot.errors import UserError
from bot.exports.builder import encode_export, select_export
from bot.messages import UserRef
from bot.pack_service import PackService
from bot.service import StickerService, help_text
from bot.settings import Settings
from storage import jobs, packs, stickers, users

log = logging.getLogger(__name__)

DEPS = "stickerbot"
PLATFORM = "telegram"
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile limit
SETREF_TIMEOUT_S = 300
FORGET = "fg"

# /setref conversation states
WAITING_PICTURE = 1

COMMANDS = [
    ("start", "what this bot does"),
    ("help", "the words I understand, with examples"),
    ("setref", "save your character (send or reply to a picture)"),
    ("mysticker", "a new sticker, e.g. /mysticker happy waving beach"),
    ("again", "another take of your last sticker"),
    ("pack", "add your newest sticker to your own sticker pack"),
    ("makepack", "a whole pack of your character, e.g. /makepack cozy winter"),
    ("export", "your pack for WhatsApp or Signal: /export whatsapp"),
    ("mypack", "the link to your sticker pack"),
    ("status", "your place in the queue"),
    ("forget", "delete your character and everything stored for you"),
    ("cancel", "stop waiting for a picture"),
]


@dataclass
class TelegramDeps:
    settings: Settings
    db: object
    service: StickerService
    admin: AdminService
    packs: TelegramPacks
    sink: TelegramSink
    pack_service: PackService
    clock: Callable[[], float] = time.time  # wall clock of the /forget deadline (tests set their own)


def deps(context: ContextTypes.DEFAULT_TYPE) -> TelegramDeps:
    return context.application.bot_data[DEPS]


def user_ref(update: Update) -> UserRef:
    user = update.effective_user
    return UserRef(PLATFORM, str(user.id), user.full_name)


def chat_context(message: Message) -> dict:
    """Where the job's sticker goes: stored with the job, read back by the sink."""
    return {"chat_id": message.chat_id, "message_id": message.message_id,
            "thread_id": message.message_thread_id if message.is_topic_message else None}


def command_text(message: Message) -> str:
    """What follows `/cmd` or `/cmd@botname`, as the user wrote it."""
    text = message.text or ""
    first = message.entities[0] if message.entities else None
    if first is not None and first.type == "bot_command" and first.offset == 0:
        return text[len(message.parse_entity(first)):].strip()
    return text.strip()


async def reply(update: Update, text: str, **kwargs) -> Message:
    return await update.effective_message.reply_text(text, **kwargs)


def user_errors_as_replies(handler):
    """A UserError (bad input, no character yet, banned...) becomes a friendly reply."""
    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE):
        try:
            return await handler(update, context)
        except UserError as exc:
            await reply(update, exc.user_message)
            return ConversationHandler.END
    return wrapper


# -- /start /help /status --------------------------------------------------------------------
def telegram_help(bot_username: str) -> str:
    return (help_text() + "\n\nYour own sticker pack:\n"
            "   /pack — add your newest sticker to it (or press ➕ under a sticker)\n"
            "   /makepack — a whole pack at once, straight into your set\n"
            "   /mypack — the link to share it\n"
            f"In a group, address me as /mysticker@{bot_username} if several bots are there.")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, telegram_help(context.bot.username))


@user_errors_as_replies
async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, deps(context).service.status(user_ref(update)))


# -- /setref ---------------------------------------------------------------------------------
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
            raise UserError(f"That file ({document.file_name or kind}) is not a picture. Send a PNG, JPEG or "
                            "WebP image, a photo, or a static sticker.", code="not_image")
        return PictureSource(document.file_id, document.file_size, "document")
    if message.sticker is not None:
        sticker = message.sticker
        if sticker.is_animated or sticker.is_video:
            which = "an animated" if sticker.is_animated else "a video"
            raise UserError(f"That is {which} sticker: I can't use animated or video stickers as a character. "
                            "Send a static sticker, a photo or an image file instead.", code="animated_sticker")
        return PictureSource(sticker.file_id, sticker.file_size, "sticker")
    return None


def replied_picture(update: Update, replied: Message | None) -> PictureSource | None:
    """The picture of the message /setref replies to, only when the user who sent /setref sent
    it: another member's photo, or a sticker the bot made (for anyone), never becomes
    someone's character."""
    source = picture_in(replied)
    if source is not None and (replied.from_user is None or replied.from_user.id != update.effective_user.id):
        raise UserError("Only pictures you sent yourself can become your character. Send your picture with "
                        "/setref as its caption, or reply /setref to your own picture.", code="not_author")
    return source


async def download_picture(context: ContextTypes.DEFAULT_TYPE, source: PictureSource) -> bytes:
    limit = min(deps(context).settings.limits.max_upload_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    too_big = UserError(f"That file is too big: the limit is {limit / 1_000_000:.0f} MB. "
                        "Send a smaller picture.", code="too_big")
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
            await reply(update, "Send me one picture of your character now: a photo, an image file or a static "
                                "sticker. A plain background works best. (/cancel to stop)")
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
    await reply(update, "I'm waiting for a picture of your character (a photo, an image file or a static "
                        "sticker). Send /cancel to stop.")
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
            not addressee or addressee.lower() == (message.get_bot().username or "").lower())


def setref_conversation() -> ConversationHandler:
    return ConversationHandler(
        entry_points=[CommandHandler("setref", setref),
                      MessageHandler(CaptionCommand("setref") & (filters.PHOTO | filters.Document.ALL), setref)],
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


# -- /mysticker /again -----------------------------------------------------------------------
async def queue_reply(context: ContextTypes.DEFAULT_TYPE, queued, reply_to: Message) -> None:
    """The "Queued…" reply, which the sink then edits with the job's progress."""
    sent = await reply_to.reply_text(queued.user_message())
    deps(context).sink.track(queued.job_id, sent.chat_id, sent.message_id)


@user_errors_as_replies
async def mysticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    queued = deps(context).service.request_sticker(user_ref(update), command_text(message), chat_context(message))
    await queue_reply(context, queued, message)


@user_errors_as_replies
async def again(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    queued = deps(context).service.again(user_ref(update), chat_context(message))
    await queue_reply(context, queued, message)


# -- /pack /mypack ---------------------------------------------------------------------------
@user_errors_as_replies
async def pack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    user = user_ref(update)
    outcome = await d.packs.add(context.bot, user, d.service.user_id(user))
    await reply(update, outcome.user_message())


@user_errors_as_replies
async def mypack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    current = d.packs.current_pack(d.service.user_id(user_ref(update)))
    if current is None:
        await reply(update, "You have no sticker pack yet. Make a sticker with /mysticker, then send /pack.")
        return
    await reply(update, f"Your pack \"{current.title}\": {set_link(current.name)}")


# -- /makepack /export ----------------------------------------------------------------------
@user_errors_as_replies
async def makepack(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/makepack [N] [words]: N stickers into the user's set at once (the sink delivers it)."""
    message = update.effective_message
    queued = deps(context).pack_service.make_pack(user_ref(update), command_text(message), chat_context(message))
    await queue_reply(context, queued, message)


@user_errors_as_replies
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export whatsapp | signal | png: the user's pack as a file (bot/exports/)."""
    d = deps(context)
    user = user_ref(update)
    request = select_export(d.db, d.settings, d.service.user_id(user), user.display_name,
                            command_text(update.effective_message) or "whatsapp")
    exported = await asyncio.to_thread(encode_export, request)  # dozens of WebP encodes: off the event loop
    await update.effective_message.reply_document(InputFile(exported.data, filename=exported.name),
                                                  caption=exported.user_message())


# -- /forget ---------------------------------------------------------------------------------
async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    owner = update.effective_user.id
    until = confirmations.deadline(deps(context).clock())
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton("Yes, delete everything", callback_data=f"{FORGET}:yes:{owner}:{until}"),
        InlineKeyboardButton("Cancel", callback_data=f"{FORGET}:no:{owner}:{until}"),
    ]])
    await reply(update, "Delete your character, its learned version, your queued jobs and every sticker I "
                        "stored for you? This cannot be undone.", reply_markup=keyboard)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    _, answer, owner, until = query.data.split(":")
    if query.from_user.id != int(owner):
        await query.answer("Only the person who sent /forget can confirm it.", show_alert=True)
        return
    if answer == "no":
        await query.answer("Cancelled.")
        await _edit_or_ignore(query.message, "OK, nothing was deleted.")
        return
    d = deps(context)
    if confirmations.expired(int(until), d.clock()):
        await query.answer("This confirmation expired: send /forget again.", show_alert=True)
        return
    user = user_ref(update)
    record = users.find_user(d.db, PLATFORM, user.platform_user_id)
    had_pack = record is not None and bool(packs.packs_for_user(d.db, record.id, PLATFORM))
    counts = d.service.forget(user)
    await query.answer("Deleted.")
    text = ("Done: I deleted your character and everything I stored for you." if counts
            else "I had nothing stored for you.")
    if had_pack:
        text += " Your Telegram sticker pack belongs to you and stays; delete it in @Stickers if you want."
    await _edit_or_ignore(query.message, text)


async def _edit_or_ignore(message: Message | None, text: str) -> None:
    if message is None:
        return
    try:
        await message.edit_text(text)
    except TelegramError as exc:
        log.info("could not edit the confirmation", extra={"error": str(exc)})


# -- buttons under a sticker -----------------------------------------------------------------
async def sticker_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Add to pack / Again / Delete. Only the user the sticker was made for may press them."""
    query = update.callback_query
    action, raw_id, owner = query.data.split(":")
    if str(query.from_user.id) != owner:
        await query.answer("Only the person who asked for this sticker can use its buttons.", show_alert=True)
        return
    d = deps(context)
    user = user_ref(update)
    message = query.message
    try:
        user_id = d.service.user_id(user)  # refuses banned users
        sticker = stickers.use_sticker(d.db, user_id, int(raw_id))  # only ever the presser's own
        if sticker is None:
            raise UserError("That sticker is gone (deleted, or /forget was used).", code="no_sticker")
        if action == ADD_TO_PACK:
            outcome = await d.packs.add(context.bot, user, user_id, sticker.id)
            await query.answer("Added." if outcome.status in ("added", "created") else None)
            await message.reply_text(outcome.user_message(), do_quote=True)
        elif action == AGAIN:
            job = jobs.get_job(d.db, sticker.job_id, user_id=user_id) if sticker.job_id else None
            if job is None:
                raise UserError("I no longer know how this sticker was made. Try /mysticker.", code="no_job")
            queued = d.service.request_sticker(user, job.request["text"], chat_context(message))
            await query.answer("Making another one…")
            sent = await message.reply_text(queued.user_message(), do_quote=True)
            d.sink.track(queued.job_id, sent.chat_id, sent.message_id)
        elif action == DELETE:
            stickers.delete_sticker(d.db, user_id, sticker.id)
            await query.answer("Deleted.")
            try:
                await message.delete()
            except TelegramError as exc:  # older than 48 h, or already gone
                log.info("sticker message not deleted", extra={"error": str(exc)})
    except UserError as exc:  # raised before the query was answered
        await query.answer(exc.user_message, show_alert=True)


# -- admin -----------------------------------------------------------------------------------
def admin_only(handler):
    @functools.wraps(handler)
    async def wrapper(update: Update, context: ContextTypes.DEFAULT_TYPE):
        if not deps(context).admin.is_admin(PLATFORM, update.effective_user.id):
            await reply(update, "That command is for the bot's admins.")
            return
        try:
            await handler(update, context)
        except UserError as exc:
            await reply(update, exc.user_message)
    return wrapper


def _target(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The user an admin command is about: the first argument, or the author of the replied message."""
    if context.args:
        return context.args[0]
    replied = update.effective_message.reply_to_message
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return str(replied.from_user.id)
    raise UserError("Whom? Give a Telegram user id (e.g. /ban 123456789) or reply to one of their messages.")


@admin_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "\n".join(deps(context).admin.stats().lines()))


@admin_only
async def ban(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Banned. " + deps(context).admin.ban(PLATFORM, _target(update, context)).line())


@admin_only
async def unban(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Unbanned. " + deps(context).admin.unban(PLATFORM, _target(update, context)).line())


@admin_only
async def quota(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/quota <user id> [<stickers per day> | default]  (or as a reply: /quota <n>)."""
    args = list(context.args or [])
    replied = update.effective_message.reply_to_message
    if len(args) == 1 and replied is not None and replied.from_user is not None:
        args.insert(0, str(replied.from_user.id))
    if not args:
        raise UserError("Usage: /quota <user id> [<stickers per day> | default]")
    admin = deps(context).admin
    if len(args) == 1:
        await reply(update, admin.user_summary(PLATFORM, args[0]).line())
        return
    value = args[1].lower()
    if value == "default":
        amount = None
    elif value.isdigit():
        amount = int(value)
    else:
        raise UserError("The quota is a number of stickers per day, or 'default'.")
    await reply(update, "Quota set. " + admin.set_quota(PLATFORM, args[0], amount).line())


# -- anything else in a private chat --------------------------------------------------------
async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "I don't know that command. Send /help to see what I can do.")


async def loose_picture(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await reply(update, "Nice picture! To make it your character, reply /setref to it.")


# -- errors and wiring -----------------------------------------------------------------------
async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    log.error("handler failed", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None and update.callback_query is None:
        try:
            await update.effective_message.reply_text("Sorry, something went wrong on my side. Please try again.")
        except TelegramError:
            pass


async def set_commands(application: Application) -> None:
    await application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])


def register(application: Application) -> None:
    application.add_handler(setref_conversation())
    application.add_handler(CommandHandler(["start", "help"], start))
    application.add_handler(CommandHandler("mysticker", mysticker))
    application.add_handler(CommandHandler("again", again))
    application.add_handler(CommandHandler("pack", pack))
    application.add_handler(CommandHandler("mypack", mypack))
    application.add_handler(CommandHandler("makepack", makepack))
    application.add_handler(CommandHandler("export", export))
    application.add_handler(CommandHandler("status", status))
    application.add_handler(CommandHandler("forget", forget))
    application.add_handler(CommandHandler("stats", stats))
    application.add_handler(CommandHandler("ban", ban))
    application.add_handler(CommandHandler("unban", unban))
    application.add_handler(CommandHandler("quota", quota))
    application.add_handler(CallbackQueryHandler(sticker_button,
                                                 pattern=rf"^({ADD_TO_PACK}|{AGAIN}|{DELETE}):\d+:\d+$"))
    application.add_handler(CallbackQueryHandler(forget_button, pattern=rf"^{FORGET}:(yes|no):\d+:\d+$"))
    # Last: only what nothing above took. In groups the bot stays quiet about other messages.
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & (filters.PHOTO | filters.Document.IMAGE),
                                           loose_picture))
    application.add_error_handler(on_error)
