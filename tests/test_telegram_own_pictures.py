"""On Telegram, /setref takes only a picture the user sent: not another member's photo,
and not a sticker the bot made (for someone else or for them). Discord refuses the same."""

from __future__ import annotations

import pytest

from benchmarks.bench_telegram import reference_png, telegram_testbed
from tests.test_telegram_adapter import (
    ANN,
    BOB,
    FAST,
    count,
    save_character,
    sticker_for,
)

NOT_YOURS = "Only pictures you sent yourself"


@pytest.fixture
async def bed(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST) as bed:
        yield bed


async def test_replying_setref_to_another_members_photo_is_refused(bed):
    group = bed.fake.group_chat(-100777, "Fans")
    photo = bed.fake.send_photo(BOB, reference_png(), chat=group)
    bed.fake.send_text(ANN, "/setref", chat=group, reply_to=photo)
    await bed.fake.wait_reply(group["id"], contains=NOT_YOURS)
    assert count(bed, "reference_images") == 0


async def test_replying_setref_to_a_sticker_the_bot_made_is_refused(bed):
    group = bed.fake.group_chat(-100778, "Fans")
    await save_character(bed, BOB, chat=group)
    _, _, bobs_sticker = await sticker_for(bed, BOB, chat=group)
    bed.fake.send_text(ANN, "/setref", chat=group, reply_to=bobs_sticker.result)
    await bed.fake.wait_reply(group["id"], contains=NOT_YOURS)
    bed.fake.send_text(BOB, "/setref", chat=group, reply_to=bobs_sticker.result)  # made for Bob, sent by the bot
    await bed.fake.wait_reply(group["id"], contains=NOT_YOURS, count=2)
    assert count(bed, "reference_images") == 1  # Bob's first picture only


async def test_replying_setref_to_your_own_photo_in_a_group_works(bed):
    group = bed.fake.group_chat(-100779, "Fans")
    photo = bed.fake.send_photo(ANN, reference_png(), chat=group)
    bed.fake.send_text(ANN, "/setref", chat=group, reply_to=photo)
    await bed.fake.wait_reply(group["id"], contains="Saved your character")


async def test_replying_setref_to_someone_elses_text_just_asks_for_a_picture(bed):
    group = bed.fake.group_chat(-100780, "Fans")
    text = bed.fake.send_text(BOB, "look at my cat", chat=group)
    bed.fake.send_text(ANN, "/setref", chat=group, reply_to=text)
    await bed.fake.wait_reply(group["id"], contains="Send me one picture")
