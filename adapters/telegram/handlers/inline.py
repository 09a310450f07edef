"""Inline mode: `@<bot> happy beach` in any chat offers the user's own finished stickers.

The answer (answerInlineQuery) holds `InlineQueryResultCachedSticker`s by the file ids
Telegram gave the stickers when they were first sent, is personal (`is_personal`: Telegram
caches it for this user only) and pages with `next_offset` (bot/sticker_search.py ranks).
A button above the results opens the private chat to make a new sticker; when nothing
matches, it says so. Inline mode must be switched on with BotFather's /setinline (README).
"""

from __future__ import annotations

from telegram import InlineQueryResultCachedSticker, InlineQueryResultsButton, Update
from telegram.ext import ContextTypes

from adapters.telegram.handlers.common import deps, user_ref
from bot.i18n import _
from bot.sticker_search import find_stickers

CACHE_S = 5  # a new sticker shows up in inline results within seconds
START_NEW = "new"  # /start new: the private chat opened from the button


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.inline_query
    text = query.query.strip()
    page = find_stickers(deps(context).db, user_ref(update), text, query.offset)
    if page.matched:
        button = InlineQueryResultsButton(_("Make a new sticker"), start_parameter=START_NEW)
    elif page.any_stickers:
        button = InlineQueryResultsButton(_("Nothing matches “{words}”: make it", words=text[:40]),
                                          start_parameter=START_NEW)
    else:
        button = InlineQueryResultsButton(_("You have no stickers yet: make one"), start_parameter=START_NEW)
    results = [InlineQueryResultCachedSticker(f"s{sticker.id}", sticker.file_id) for sticker in page.stickers]
    await query.answer(results, cache_time=CACHE_S, is_personal=True, next_offset=page.next_offset, button=button)
