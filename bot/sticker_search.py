"""A user's own finished stickers, found by words: what Telegram's inline mode offers.

`@bot happy beach` in any chat: the query is read by the same parser as /mysticker (so
"feliz playa" finds the same stickers), and each of the user's stickers scores one point per
tag it shares with the query (emotion, action, composition, style, background, each
appearance extra) and per free word of its request the query repeats. Stickers with a point
or more come first by score, then newest first; an empty query lists them all, newest first.
A page holds at most `PAGE` (answerInlineQuery takes 50); the offset is the index of the
next one. Only ever the asking user's own stickers, and only those the platform already has a
file of (they were sent there once), so they can be offered by file id.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from bot.messages import UserRef
from bot.schema.prompt_parser import PromptError, parse_prompt
from bot.schema.vocabulary import Attribute
from storage import stickers, users
from storage.records import FiledSticker

PAGE = 50
SCAN_LIMIT = 1000  # the newest stickers looked at per query


@dataclass(frozen=True)
class StickerPage:
    stickers: tuple[FiledSticker, ...]
    next_offset: str  # "" when this is the last page
    matched: bool  # False: nothing fits the words (offer to make a new sticker instead)
    any_stickers: bool = False  # the user has stickers at all (matching or not)


@dataclass(frozen=True)
class _Wanted:
    tags: dict[str, str]
    appearance: frozenset[str]
    words: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.tags or self.appearance or self.words)


def _wanted(text: str) -> _Wanted:
    try:
        request = parse_prompt(text)
    except PromptError:  # empty (or too long to be a search): no words to match
        return _Wanted({}, frozenset(), frozenset())
    tags = request.as_tags()
    return _Wanted(
        {a.value: tags[a.value] for a in request.explicit if a is not Attribute.APPEARANCE},
        frozenset(request.appearance),
        frozenset(request.free_text),
    )


def score(wanted: _Wanted, sticker: FiledSticker) -> int:
    """How many of the query's tags and words the sticker has."""
    points = sum(1 for attribute, value in wanted.tags.items() if sticker.tags.get(attribute) == value)
    points += len(wanted.appearance & set((sticker.tags.get("appearance") or "").split()))
    return points + len(wanted.words & set(sticker.free_text))


def find_stickers(db: sqlite_utils.Database, user: UserRef, text: str, offset: str = "") -> StickerPage:
    record = users.find_user(db, user.platform, user.platform_user_id)
    if record is None or record.banned:
        return StickerPage((), "", False)
    filed = stickers.filed_on(db, record.id, user.platform, limit=SCAN_LIMIT)  # newest first
    wanted = _wanted(text)
    if wanted.empty:
        ranked = filed
    else:
        scored = [(score(wanted, s), s) for s in filed]
        ranked = [s for points, s in sorted(scored, key=lambda pair: -pair[0]) if points > 0]  # stable: newest first
    start = int(offset) if offset.isdigit() else 0
    page = ranked[start : start + PAGE]
    more = start + PAGE < len(ranked)
    return StickerPage(tuple(page), str(start + PAGE) if more else "", bool(ranked), bool(filed))
