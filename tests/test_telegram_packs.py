"""/makepack and /export on Telegram, through PTB's real HTTP stack against the fake Bot API, which
checks createNewStickerSet (1-50 stickers, 1-20 emoji, keywords 0-20 within 64 characters) and
setStickerSetThumbnail (100 x 100 WEBP/PNG, at most 128 KB) as the Bot API documents them."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from telegram import InputFile, InputSticker
from telegram.error import BadRequest

from adapters.telegram.packs import MAX_STATIC_STICKERS
from benchmarks.bench_telegram import reference_png, telegram_testbed
from benchmarks.fakes.fake_bot_api import BOT_USERNAME, TgUser, valid_set_name
from bot.schema.vocabulary import EMOTION

ANN = TgUser(2001, "Ann", "ann")
FAST = {"progress_interval_s": 0.1, "chat_max_rate": 50.0, "chat_burst": 20}


@pytest.fixture
async def bed(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST) as bed:
        yield bed


async def save_character(bed, user=ANN):
    bed.fake.send_photo(user, reference_png(), caption="/setref")
    await bed.fake.wait_reply(user.id, contains="Saved your character")


async def test_makepack_creates_the_whole_set_in_one_call_with_thumbnail_and_link(bed):
    fake = bed.fake
    await save_character(bed)
    fake.send_text(ANN, "/makepack cozy winter")
    queued = await fake.wait_reply(ANN.id, contains="Drawing a pack of 12 stickers")
    created = await fake.wait_for("createNewStickerSet", timeout=60)
    name = created["name"]
    assert valid_set_name(name, BOT_USERNAME)
    assert len(created["stickers"]) == 12 and len(fake.calls_to("createNewStickerSet")) == 1
    emoji = [s["emoji_list"] for s in created["stickers"]]
    assert sorted(e for [e] in emoji) == sorted([v.emoji for v in EMOTION.values] * 2)  # each emotion's emoji
    for item in created["stickers"]:
        assert item["format"] == "static"
        assert 0 < len(item["keywords"]) <= 20 and sum(map(len, item["keywords"])) <= 64
        assert item["keywords"][0] in EMOTION.by_key
    assert len(fake.sticker_sets[name]["stickers"]) == 12
    thumb_call = await fake.wait_for("setStickerSetThumbnail")
    thumbnail = Image.open(io.BytesIO(thumb_call.files["thumbnail"].data))
    assert thumbnail.size == (100, 100) and thumb_call["format"] == "static"
    assert fake.sticker_sets[name]["thumbnail"]["width"] == 100
    done = await fake.wait_reply(ANN.id, contains="addstickers")
    assert f"https://t.me/addstickers/{name}" in done["text"] and "12 new stickers" in done["text"]
    # The queued reply showed the set's progress, then made way for the link.
    edits = [
        c["text"] for c in fake.calls_to("editMessageText", lambda c: c["message_id"] == queued.result["message_id"])
    ]
    assert any("/12 stickers done" in text for text in edits)
    assert not fake.calls_to("sendSticker")  # the pack's stickers are not sent one by one

    fake.send_text(ANN, "/mypack")
    await fake.wait_reply(ANN.id, contains=f"addstickers/{name}")


async def test_makepack_adds_to_an_existing_set_and_tells_when_it_is_full(bed):
    fake = bed.fake
    await save_character(bed)
    fake.send_text(ANN, "/mysticker happy")
    await fake.wait_for("sendSticker")
    fake.send_text(ANN, "/pack")
    name = (await fake.wait_for("createNewStickerSet"))["name"]

    fake.send_text(ANN, "/makepack 4")
    added = await fake.wait_reply(ANN.id, contains="Added to your pack (5/120)", timeout=30)
    assert "4 new stickers" in added["text"]
    assert len(fake.calls_to("addStickerToSet")) == 4 and len(fake.calls_to("createNewStickerSet")) == 1
    assert len(fake.sticker_sets[name]["stickers"]) == 5

    fake.fill_sticker_set(name, MAX_STATIC_STICKERS - 1)
    fake.send_text(ANN, "/makepack 3")
    full = await fake.wait_reply(ANN.id, contains="is full", timeout=30)
    assert "2 new stickers did not fit" in full["text"] and "Added to your pack (120/120): 1 new" in full["text"]
    assert len(fake.sticker_sets[name]["stickers"]) == MAX_STATIC_STICKERS


async def test_makepack_limits_are_explained(bed):
    fake = bed.fake
    fake.send_text(ANN, "/makepack")
    await fake.wait_reply(ANN.id, contains="/setref")
    await save_character(bed)
    fake.send_text(ANN, "/makepack 51")
    await fake.wait_reply(ANN.id, contains="1 to 50 stickers")
    assert bed.db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


async def test_export_whatsapp_and_signal_send_files(bed):
    fake = bed.fake
    await save_character(bed)
    fake.send_text(ANN, "/makepack 3")
    await fake.wait_reply(ANN.id, contains="addstickers", timeout=30)
    fake.send_text(ANN, "/export whatsapp")
    sent = await fake.wait_for("sendDocument", timeout=30)
    upload = sent.files["document"]
    assert upload.filename.endswith(".wastickers") and "sticker-maker" in sent["caption"]
    names = zipfile.ZipFile(io.BytesIO(upload.data)).namelist()
    assert {"title.txt", "author.txt", "tray.png", "contents.json"} <= set(names)
    assert len([n for n in names if n.endswith(".webp")]) == 3
    fake.send_text(ANN, "/export signal")
    signal = await fake.wait_for("sendDocument", count=2, timeout=30)
    assert signal.files["document"].filename.endswith("-signal.zip")
    fake.send_text(ANN, "/export line")
    await fake.wait_reply(ANN.id, contains="I can export as")


async def test_the_fake_enforces_the_documented_set_limits(bed):
    """The fake refuses what Telegram refuses, so the tests above would catch a bot that broke
    a limit: 51 stickers in one call, 21 emoji, keywords past 64 characters, a 101 px thumbnail."""
    fake, bot = bed.fake, bed.bot.application.bot
    fake.private_chat(ANN)
    webp = io.BytesIO()
    Image.new("RGBA", (512, 512), (200, 30, 30, 255)).save(webp, format="WEBP")
    uploaded = await bot.upload_sticker_file(ANN.id, InputFile(webp.getvalue(), filename="s.webp"), "static")

    def sticker(**kw):
        return InputSticker(
            uploaded.file_id, emoji_list=kw.get("emoji", ["😊"]), format="static", keywords=kw.get("keywords")
        )

    name = f"limits_by_{BOT_USERNAME}"
    with pytest.raises(BadRequest, match="(?i)stickers_invalid"):
        await bot.create_new_sticker_set(ANN.id, name, "t", [sticker()] * 51)
    with pytest.raises(BadRequest, match="(?i)emoji"):
        await bot.create_new_sticker_set(ANN.id, name, "t", [sticker(emoji=["😊"] * 21)])
    with pytest.raises(BadRequest, match="(?i)keywords"):
        await bot.create_new_sticker_set(ANN.id, name, "t", [sticker(keywords=["k" * 40, "w" * 25])])
    assert await bot.create_new_sticker_set(ANN.id, name, "t", [sticker(keywords=["k" * 40, "w" * 24])] * 50)
    for size, fmt in (((101, 101), "WEBP"), ((100, 100), "JPEG")):
        image = io.BytesIO()
        Image.new("RGB", size, (1, 2, 3)).save(image, format=fmt)
        with pytest.raises(BadRequest):
            await bot.set_sticker_set_thumbnail(name, ANN.id, "static", InputFile(image.getvalue(), filename="t"))
    good = io.BytesIO()
    Image.new("RGBA", (100, 100), (1, 2, 3, 255)).save(good, format="PNG")
    assert await bot.set_sticker_set_thumbnail(name, ANN.id, "static", InputFile(good.getvalue(), filename="t.png"))
    assert fake.sticker_sets[name]["thumbnail"]["width"] == 100
