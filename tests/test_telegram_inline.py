"""Telegram inline mode against the fake Bot API: "@bot happy" in any chat offers the user's own
finished stickers by the file ids Telegram gave them, personal, ranked by tag match then
recency, 50 to a page with an offset, with a button to the private chat, never another user's."""

from __future__ import annotations

import pytest

from benchmarks.bench_telegram import telegram_testbed
from benchmarks.fakes.fake_bot_api import TgUser
from benchmarks.fakes.stub_runtime import sticker_png
from bot.sticker_spec import to_telegram_sticker
from storage import stickers, users
from tests.test_telegram_adapter import FAST, LIMITS, save_character, sticker_for

ANN = TgUser(1001, "Ann", "ann")
BOB = TgUser(1002, "Bob", "bob")
CAROL = TgUser(1003, "Carol", "carol", language_code="es")


@pytest.fixture
async def bed(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST, limits={**LIMITS, "requests_per_minute": 0}) as bed:
        yield bed


def offered(answer) -> list[str]:
    return [r["sticker_file_id"] for r in answer["results"]]


async def make(bed, user: TgUser, words: str, nth: int) -> str:
    """A sticker made the real way; returns the file id Telegram gave it."""
    _, _, sent = await sticker_for(bed, user, f"/mysticker {words}", nth=nth)
    return sent.result["sticker"]["file_id"]


async def ask(bed, user: TgUser, query: str, offset: str = ""):
    return await bed.fake.inline_answer(bed.fake.inline_query(user, query, offset))


async def test_inline_offers_only_the_users_own_stickers_ranked_by_tags_then_recency(bed):
    await save_character(bed, ANN)
    happy_beach = await make(bed, ANN, "happy waving beach", 1)
    sad_forest = await make(bed, ANN, "sad sitting forest", 2)
    happy_city = await make(bed, ANN, "happy city", 3)
    await save_character(bed, BOB)
    bob_happy = await make(bed, BOB, "happy waving beach", 1)

    answer = await ask(bed, ANN, "happy")
    assert offered(answer) == [happy_city, happy_beach]  # both match once: newest first
    assert answer["is_personal"] is True and answer["results"][0]["type"] == "sticker"
    assert answer["button"]["start_parameter"] == "new" and answer["button"]["text"] == "Make a new sticker"
    assert answer["next_offset"] == ""

    assert offered(await ask(bed, ANN, "happy beach")) == [happy_beach, happy_city]  # two tags beat one
    assert offered(await ask(bed, ANN, "feliz playa")) == [happy_beach, happy_city]  # any shipped language
    assert offered(await ask(bed, ANN, "")) == [happy_city, sad_forest, happy_beach]  # everything, newest first
    assert offered(await ask(bed, BOB, "")) == [bob_happy]  # never another user's

    nothing = await ask(bed, ANN, "purple dragon")
    assert nothing["results"] == [] and nothing["button"]["text"] == "Nothing matches “purple dragon”: make it"
    none_yet = await ask(bed, CAROL, "feliz")
    assert none_yet["results"] == [] and none_yet["button"]["text"] == "Aún no tienes stickers: haz uno"
    assert users.find_user(bed.db, "telegram", str(CAROL.id)) is None  # a query stores nothing about the user


async def test_inline_pages_fifty_at_a_time_with_the_offset(bed):
    await save_character(bed, ANN)
    first = await make(bed, ANN, "happy waving beach", 1)
    ann = users.find_user(bed.db, "telegram", str(ANN.id)).id
    webp = to_telegram_sticker(sticker_png())
    file_ids = [first]
    for n in range(57):  # as if sent before: stored stickers with a file id Telegram knows
        file_id = bed.fake.add_file(webp, "stickers", "webp")["file_id"]
        record = stickers.save_sticker(bed.db, ann, None, sticker_png(), "😊", {"emotion": "happy"},
                                       now=2_000_000_000 + n)
        stickers.set_platform_file_id(bed.db, ann, record.id, "telegram", file_id)
        file_ids.append(file_id)
    newest_first = list(reversed(file_ids[1:])) + [first]

    page_one = await ask(bed, ANN, "")
    assert offered(page_one) == newest_first[:50] and page_one["next_offset"] == "50"
    page_two = await ask(bed, ANN, "", offset=page_one["next_offset"])
    assert offered(page_two) == newest_first[50:] and page_two["next_offset"] == ""
    assert not set(offered(page_one)) & set(offered(page_two))
