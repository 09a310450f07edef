"""/cancel and the Cancel button under a progress message: a queued or running request taken back.

`/cancel` takes back the user's newest request, `/cancel all` every one (bot/service.py);
while /setref waits for a picture, /cancel stops that wait instead (the conversation's
fallback, references.py). The button names its request and its owner: only they may press it.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import (
    command_text,
    deps,
    pressed_by_owner,
    reply,
    user_errors_as_replies,
    user_ref,
)
from bot.i18n import _
from bot.messages import cancel_message, wants_everything


@user_errors_as_replies
async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    everything = wants_everything(command_text(update.effective_message))
    cancelled = d.service.cancel(user_ref(update), everything=everything)
    for request in cancelled:
        await d.sink.cancelled(request.request_id)
    await reply(update, cancel_message(cancelled))


async def cancel_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if (fields := await pressed_by_owner(update)) is None:
        return
    (request_id,) = fields
    d = deps(context)
    cancelled = d.service.cancel(user_ref(update), request_id=request_id)
    await d.sink.cancelled(request_id)  # also when it finished meanwhile: the button goes
    await update.callback_query.answer(cancel_message(cancelled) if cancelled else _("It is no longer in the queue."))
