"""The Telegram adapter, driven through PTB's real HTTP stack against a fake Bot API server
(benchmarks/fakes/fake_bot_api.py) and the stub runtime (benchmarks/fakes/stub_runtime.py). Nothing in PTB is mocked:
users' messages arrive through getUpdates, and every assertion is on what the bot sent."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from benchmarks.bench_telegram import reference_png, telegram_testbed
from adapters.telegram.packs import MAX_STATIC_STICKERS, set_name
from benchmarks.fakes.fake_bot_api import BOT_USERNAME, UNLIMITED, TgUser, valid_set_name, validate_static_sticker

ANN = TgUser(1001, "Ann", "ann")
BOB = TgUser(1002, "Bob", "bob")
ADMIN = TgUser(7, "Admin")
# Fast but real: the rate limiter stays on (30/s overall, 20/min per group), the private-chat
# pace is loosened so that a test's few messages per chat are not slowed to one per second.
FAST = {"admin_ids": (ADMIN.id,), "progress_interval_s": 0.25, "chat_max_rate": 50.0, "chat_burst": 20}
LIMITS = {"blocklist": ("badword",), "max_upload_bytes": 2_000_000}


@pytest.fixture
async def bed(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST, limits=LIMITS) as bed:
        yield bed


def count(bed, table: str) -> int:
    return bed.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def assert_telegram_sticker(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP"
    width, height = image.size
    assert max(width, height) == 512 and min(width, height) <= 512
    assert len(data) <= 512 * 1024
    assert validate_static_sticker(data) is None


def buttons(call) -> list[str]:
    return [button["callback_data"] for row in call["reply_markup"]["inline_keyboard"] for button in row]


async def save_character(bed, user: TgUser, chat: dict | None = None, caption: str = "/setref") -> None:
    bed.fake.send_photo(user, reference_png(), chat=chat, caption=caption)
    await bed.fake.wait_reply((chat or {"id": user.id})["id"], contains="Saved your character")


async def sticker_for(bed, user: TgUser, text: str = "/mysticker happy waving beach", *, chat: dict | None = None,
                      nth: int = 1):
    """Send a /mysticker and return (command message, queued reply call, sendSticker call)."""
    chat_id = (chat or {"id": user.id})["id"]
    command = bed.fake.send_text(user, text, chat=chat)
    queued = await bed.fake.wait_for("sendMessage", lambda c: c["chat_id"] == chat_id and c["text"].startswith(
        "Queued") and (c.get("reply_parameters") or {}).get("message_id", command["message_id"]) == command[
        "message_id"])
    sent = await bed.fake.wait_for("sendSticker", lambda c: c["chat_id"] == chat_id, count=nth)
    return command, queued, sent


# -- the whole private flow --------------------------------------------------------------------
async def test_private_chat_from_start_to_a_shared_pack(bed):
    fake = bed.fake
    fake.send_text(ANN, "/start")
    help_reply = await fake.wait_reply(ANN.id)
    assert "/mysticker" in help_reply["text"] and "happy" in help_reply["text"] and "/pack" in help_reply["text"]

    fake.send_text(ANN, "/mysticker happy")
    guidance = await fake.wait_reply(ANN.id, contains="not saved a character")
    assert "/setref" in guidance["text"] and count(bed, "jobs") == 0

    await save_character(bed, ANN)
    command, queued, sent = await sticker_for(bed, ANN)
    assert_telegram_sticker(sent.files["sticker"].data)
    assert sent.files["sticker"].filename == "sticker.webp"
    assert sent["reply_parameters"]["message_id"] == command["message_id"]
    sticker_id = bed.db.execute("SELECT id FROM stickers").fetchone()[0]
    assert buttons(sent) == [f"pk:{sticker_id}:{ANN.id}", f"ag:{sticker_id}:{ANN.id}", f"rm:{sticker_id}:{ANN.id}"]
    progress_id = queued.result["message_id"]
    await fake.wait_for("deleteMessage", lambda c: c["message_id"] == progress_id)

    fake.send_text(ANN, "/pack")
    created = await fake.wait_for("createNewStickerSet")
    name = created["name"]
    assert valid_set_name(name, BOT_USERNAME) and name == f"u{ANN.id}_by_{BOT_USERNAME}"
    assert created["stickers"][0]["emoji_list"] == ["😊"]  # the emoji of the Emotion "happy"
    assert_telegram_sticker(fake.calls_to("uploadStickerFile")[0].files["sticker"].data)
    assert f"t.me/addstickers/{name}" in (await fake.wait_reply(ANN.id, contains="addstickers"))["text"]

    # "Again" under the sticker, then "Add to pack" under the new one.
    fake.press(ANN, sent.result, buttons(sent)[1])
    again = await fake.wait_for("sendSticker", lambda c: c["chat_id"] == ANN.id, count=2)
    assert again["reply_parameters"]["message_id"] == sent.result["message_id"]
    new_id = int(buttons(again)[0].split(":")[1])
    assert new_id != sticker_id
    fake.press(ANN, again.result, buttons(again)[0])
    added = await fake.wait_for("addStickerToSet")
    assert added["name"] == name and len(fake.sticker_sets[name]["stickers"]) == 2
    await fake.wait_reply(ANN.id, contains=f"(2/{MAX_STATIC_STICKERS})")

    fake.send_text(ANN, "/mypack")
    assert (await fake.wait_reply(ANN.id, contains="Your pack"))["text"].endswith(f"https://t.me/addstickers/{name}")


# -- /setref sources and bad input -------------------------------------------------------------
async def test_setref_as_a_reply_to_a_photo(bed):
    photo = bed.fake.send_photo(ANN, reference_png())
    bed.fake.send_text(ANN, "/setref", reply_to=photo)
    await bed.fake.wait_reply(ANN.id, contains="Saved your character")
    assert count(bed, "reference_images") == 1


async def test_setref_waits_for_a_picture_and_takes_an_image_document(bed):
    fake = bed.fake
    fake.send_text(ANN, "/setref")
    await fake.wait_reply(ANN.id, contains="Send me one picture")
    fake.send_text(ANN, "hello?")
    await fake.wait_reply(ANN.id, contains="waiting for a picture")
    fake.send_document(ANN, reference_png(), "mascot.png", "image/png")
    await fake.wait_reply(ANN.id, contains="Saved your character")
    assert count(bed, "reference_images") == 1


async def test_a_static_sticker_can_be_the_reference(bed):
    webp = io.BytesIO()
    Image.open(io.BytesIO(reference_png())).resize((512, 512)).save(webp, format="WEBP")
    bed.fake.send_text(ANN, "/setref")
    await bed.fake.wait_reply(ANN.id, contains="Send me one picture")
    bed.fake.send_sticker(ANN, webp.getvalue())
    await bed.fake.wait_reply(ANN.id, contains="Saved your character")


async def test_animated_and_video_stickers_are_refused_and_nothing_is_stored(bed):
    fake = bed.fake
    fake.send_text(ANN, "/setref")
    await fake.wait_reply(ANN.id, contains="Send me one picture")
    fake.send_sticker(ANN, b"not really lottie", is_animated=True)
    refused = await fake.wait_reply(ANN.id, contains="That is an animated sticker")
    assert "Send another picture" in refused["text"]
    fake.send_sticker(ANN, b"\x1aE\xdf\xa3 webm", is_video=True)
    await fake.wait_reply(ANN.id, contains="That is a video sticker")
    fake.send_text(ANN, "/cancel")
    await fake.wait_reply(ANN.id, contains="stopped waiting")
    assert not fake.calls_to("getFile")  # refused without downloading
    assert count(bed, "reference_images") == 0


async def test_non_images_and_files_over_the_limit_are_refused_before_download(bed):
    fake = bed.fake
    fake.send_document(ANN, b"%PDF-1.4 ...", "cv.pdf", "application/pdf", caption="/setref")
    await fake.wait_reply(ANN.id, contains="is not a picture")
    fake.send_document(ANN, reference_png(), "huge.png", "image/png", caption="/setref", file_size=50_000_000)
    await fake.wait_reply(ANN.id, contains="too big")
    fake.send_document(ANN, b"\x89PNG\r\n\x1a\n broken", "broken.png", "image/png", caption="/setref")
    await fake.wait_reply(ANN.id, contains="look like a picture")  # downloaded, then refused by validation
    assert len(fake.calls_to("getFile")) == 1
    assert count(bed, "reference_images") == 0 and count(bed, "users") <= 1


async def test_empty_long_and_blocked_prompts_get_a_clear_reply_and_queue_nothing(bed):
    fake = bed.fake
    await save_character(bed, ANN)
    fake.send_text(ANN, "/mysticker")
    await fake.wait_reply(ANN.id, contains="Tell me what the sticker should show")
    fake.send_text(ANN, "/mysticker " + "happy " * 60)
    await fake.wait_reply(ANN.id, contains="the limit is 200")
    fake.send_text(ANN, "/mysticker happy BadWord beach")
    await fake.wait_reply(ANN.id, contains="can't make that sticker")
    assert count(bed, "jobs") == 0


# -- buttons, groups, concurrency --------------------------------------------------------------
async def test_sticker_buttons_act_only_for_their_owner(bed):
    fake = bed.fake
    await save_character(bed, ANN)
    await save_character(bed, BOB)
    _, _, sent = await sticker_for(bed, ANN)
    jobs_before = count(bed, "jobs")
    for data in buttons(sent):
        fake.press(BOB, sent.result, data)
    answers = [await fake.wait_for("answerCallbackQuery", count=n) for n in (1, 2, 3)]
    assert all(a["show_alert"] and "Only the person who asked" in a["text"] for a in answers)
    assert not fake.calls_to("uploadStickerFile") and not fake.calls_to("createNewStickerSet")
    assert count(bed, "jobs") == jobs_before and count(bed, "stickers") == 1
    assert not fake.calls_to("deleteMessage", lambda c: c["message_id"] == sent.result["message_id"])

    fake.press(ANN, sent.result, buttons(sent)[2])
    await fake.wait_for("deleteMessage", lambda c: c["message_id"] == sent.result["message_id"])
    assert count(bed, "stickers") == 0
    fake.press(ANN, sent.result, buttons(sent)[0])  # a button of the deleted sticker, pressed late
    gone = await fake.wait_for("answerCallbackQuery", count=5)
    assert "gone" in gone["text"] and not fake.calls_to("uploadStickerFile")


async def test_group_commands_addressed_to_the_bot_are_answered_to_the_right_person(bed):
    fake = bed.fake
    group = fake.group_chat(-100555, "Sticker fans")
    photo = fake.send_photo(ANN, reference_png(), chat=group, caption=f"/setref@{BOT_USERNAME}")
    saved = await fake.wait_reply(group["id"], contains="Saved your character")
    assert saved["reply_parameters"]["message_id"] == photo["message_id"]

    fake.send_text(BOB, "/mysticker@some_other_bot happy", chat=group)
    bob_asks = fake.send_text(BOB, f"/mysticker@{BOT_USERNAME} happy", chat=group)
    guidance = await fake.wait_reply(group["id"], contains="/setref")
    assert guidance["reply_parameters"]["message_id"] == bob_asks["message_id"]

    command, queued, sent = await sticker_for(bed, ANN, f"/mysticker@{BOT_USERNAME} sad sitting", chat=group)
    assert queued["reply_parameters"]["message_id"] == command["message_id"]
    assert sent["reply_parameters"]["message_id"] == command["message_id"]
    assert_telegram_sticker(sent.files["sticker"].data)
    replies = fake.calls_to("sendMessage", lambda c: c["chat_id"] == group["id"])
    assert len(replies) == 3  # the message for the other bot got no answer

    fake.press(BOB, sent.result, buttons(sent)[2])  # Bob cannot delete Ann's sticker in the group
    refused = await fake.wait_for("answerCallbackQuery")
    assert refused["show_alert"] and count(bed, "stickers") == 1


async def test_two_users_at_once_each_get_their_own_sticker(bed):
    fake = bed.fake
    for user in (ANN, BOB):
        fake.send_photo(user, reference_png(), caption="/setref")
    for user in (ANN, BOB):
        fake.send_text(user, "/mysticker love close up")
    sent = {user.id: await fake.wait_for("sendSticker", lambda c, u=user: c["chat_id"] == u.id)
            for user in (ANN, BOB)}
    for user in (ANN, BOB):
        sticker_id = int(buttons(sent[user.id])[0].split(":")[1])
        owner = bed.db.execute("SELECT u.platform_user_id FROM stickers s JOIN users u ON u.id = s.user_id "
                               "WHERE s.id = ?", [sticker_id]).fetchone()[0]
        assert owner == str(user.id)
        assert_telegram_sticker(sent[user.id].files["sticker"].data)
    assert len(fake.calls_to("sendSticker")) == 2


async def test_a_429_storm_is_waited_out_and_every_sticker_arrives(bed):
    fake = bed.fake
    users = [TgUser(2000 + i, f"U{i}") for i in range(4)]
    for user in users:
        await save_character(bed, user)
    for user in users:
        fake.send_text(user, "/mysticker happy jumping")
    await fake.wait_for("sendMessage", lambda c: c["text"].startswith("Queued"))
    fake.flood(1.2)
    for user in users:
        sent = await fake.wait_for("sendSticker", lambda c, u=user: c["chat_id"] == u.id, timeout=20)
        assert_telegram_sticker(sent.files["sticker"].data)
    refused = [c for c in fake.calls if c.status == 429]
    assert refused, "the storm should have hit some requests"
    # Honouring retry_after: each refused request is sent again, and not before its retry_after
    # is over (a lower bound on time: a slow machine only makes the retry later).
    def same_request(a, b) -> bool:
        return (a.method, a.get("chat_id"), a.get("message_id")) == (b.method, b.get("chat_id"), b.get("message_id"))

    for call in refused:
        retry_after = call.result["parameters"]["retry_after"]
        retry = next(c for c in fake.calls if c.at > call.at and same_request(c, call))
        assert retry.at - call.at >= retry_after, (call.method, retry.at - call.at, retry_after)
    # Every request waits while one is refused: only those already in flight were answered 429,
    # a few (the stickers and progress edits of four chats), not one per retry of each.
    assert fake.flood_answers <= 8


# -- packs -------------------------------------------------------------------------------------
async def test_full_pack_gets_a_clear_message_and_a_deleted_pack_is_made_again(bed):
    fake = bed.fake
    await save_character(bed, ANN)
    await sticker_for(bed, ANN)
    fake.send_text(ANN, "/pack")
    first = (await fake.wait_for("createNewStickerSet"))["name"]
    fake.fill_sticker_set(first, MAX_STATIC_STICKERS)

    await sticker_for(bed, ANN, "/mysticker sleepy", nth=2)
    fake.send_text(ANN, "/pack")
    full = await fake.wait_reply(ANN.id, contains="Your pack is full")
    assert "@Stickers" in full["text"] and not fake.calls_to("addStickerToSet")

    fake.delete_sticker_set(first)  # the user deleted it in @Stickers
    fake.send_text(ANN, "/pack")
    again = await fake.wait_for("createNewStickerSet", count=2)
    assert again["name"] != first and valid_set_name(again["name"], BOT_USERNAME)
    assert again["stickers"][0]["emoji_list"] == ["😴"]
    fake.send_text(ANN, "/mypack")
    await fake.wait_reply(ANN.id, contains=f"addstickers/{again['name']}")


def test_set_names_follow_telegram_rules():
    for user_id in (1, 123456789, 9_999_999_999):
        for generation in (1, 2, 17):
            for bot in ("a_bot", "seal_test_bot", "Some_Long_Name_For_A_Sticker_Bot"):
                name = set_name(user_id, bot, generation)
                assert valid_set_name(name, bot), name
                assert len(name) <= 64 and name[0].isalpha() and "__" not in name
    with pytest.raises(ValueError):
        set_name(1, "x" * 61 + "bot")


# -- /forget, admin, progress, pacing -----------------------------------------------------------
async def test_forget_needs_the_owners_confirmation(bed):
    fake = bed.fake
    await save_character(bed, ANN)
    await sticker_for(bed, ANN)
    fake.send_text(ANN, "/forget")
    ask = await fake.wait_reply(ANN.id, contains="cannot be undone")
    yes, no = buttons(ask)
    fake.press(BOB, ask.result, yes)
    assert "Only the person" in (await fake.wait_for("answerCallbackQuery"))["text"]
    fake.press(ANN, ask.result, no)
    await fake.wait_for("editMessageText", lambda c: "nothing was deleted" in c["text"])
    assert count(bed, "reference_images") == 1 and count(bed, "stickers") == 1

    fake.send_text(ANN, "/forget")
    ask = await fake.wait_reply(ANN.id, contains="cannot be undone", count=2)
    fake.press(ANN, ask.result, buttons(ask)[0])
    await fake.wait_for("editMessageText", lambda c: c["text"].startswith("Done"))
    assert count(bed, "reference_images") == 0 and count(bed, "stickers") == 0 and count(bed, "jobs") == 0
    fake.send_text(ANN, "/mysticker happy")
    await fake.wait_reply(ANN.id, contains="not saved a character")


async def test_a_forget_confirmation_expires_after_ten_minutes_for_its_owner_too(bed):
    """The window is pinned on the adapter's clock: pressed at the deadline it deletes; one
    second past it, nothing is deleted and the owner is asked to send /forget again."""
    from adapters.telegram.handlers import DEPS

    fake, now = bed.fake, [1_000_000.0]
    bed.bot.application.bot_data[DEPS].clock = lambda: now[0]
    await save_character(bed, ANN)
    fake.send_text(ANN, "/forget")
    ask = await fake.wait_reply(ANN.id, contains="cannot be undone")
    yes = buttons(ask)[0]
    assert yes == f"fg:yes:{ANN.id}:{1_000_600}"
    now[0] = 1_000_601.0
    fake.press(ANN, ask.result, yes)
    assert "expired" in (await fake.wait_for("answerCallbackQuery"))["text"]
    assert count(bed, "reference_images") == 1
    now[0] = 1_000_600.0
    fake.press(ANN, ask.result, yes)
    await fake.wait_for("editMessageText", lambda c: c["text"].startswith("Done"))
    assert count(bed, "reference_images") == 0


async def test_admin_commands_only_for_configured_admins(bed):
    fake = bed.fake
    fake.send_text(BOB, "/stats")
    await fake.wait_reply(BOB.id, contains="for the bot's admins")
    fake.send_text(BOB, f"/ban {ANN.id}")
    await fake.wait_reply(BOB.id, contains="for the bot's admins", count=2)

    await save_character(bed, BOB)
    fake.send_text(ADMIN, "/stats")
    assert "Users: 1" in (await fake.wait_reply(ADMIN.id, contains="Users:"))["text"]
    fake.send_text(ADMIN, f"/ban {BOB.id}")
    await fake.wait_reply(ADMIN.id, contains="Banned.")
    fake.send_text(BOB, "/mysticker happy")
    await fake.wait_reply(BOB.id, contains="can't use this bot")
    fake.send_text(ADMIN, f"/unban {BOB.id}")
    await fake.wait_reply(ADMIN.id, contains="Unbanned.")
    fake.send_text(ADMIN, f"/quota {BOB.id} 5")
    assert "quota 5/day (set by an admin)" in (await fake.wait_reply(ADMIN.id, contains="Quota set."))["text"]
    fake.send_text(ADMIN, "/ban someone")
    await fake.wait_reply(ADMIN.id, contains="is not a user id")


async def test_progress_is_edited_at_most_once_per_interval_per_chat(tmp_path):
    stub = {"adapt_steps": 8, "generate_steps": 8, "step_delay_s": 0.06}
    async with telegram_testbed(tmp_path, telegram=FAST, limits=LIMITS, stub_options=stub) as bed:
        await save_character(bed, ANN)
        await sticker_for(bed, ANN)
        edits = bed.fake.calls_to("editMessageText", lambda c: c["chat_id"] == ANN.id)
    assert len(edits) >= 2
    assert any("Learning your character" in e["text"] for e in edits)
    assert any("Drawing your sticker" in e["text"] for e in edits)
    gaps = [b.at - a.at for a, b in zip(edits, edits[1:])]
    assert min(gaps) >= FAST["progress_interval_s"] - 0.02


async def test_private_chat_pace_spaces_bursts_but_not_other_chats(tmp_path):
    pace = {**FAST, "chat_max_rate": 10.0, "chat_burst": 2}
    async with telegram_testbed(tmp_path, telegram=pace, run_worker=False) as bed:
        bed.fake.private_chat(ANN)
        bed.fake.private_chat(BOB)
        bot = bed.bot.application.bot
        started = time.monotonic()
        await asyncio.gather(*(bot.send_message(ANN.id, f"n{i}") for i in range(6)))
        ann = [c.at - started for c in bed.fake.calls_to("sendMessage", lambda c: c["chat_id"] == ANN.id)]
    assert len(ann) == 6
    # 2 at once, then 10 per second: the 6th waits at least 0.4 s (a lower bound: a slow
    # machine only makes it later).
    assert ann[-1] >= 0.35


async def test_a_chat_held_back_by_its_pace_does_not_hold_up_another_chat(tmp_path):
    """Event-based: Ann's third message waits half an hour for her chat's pace; Bob's is sent
    meanwhile (no tight wall-clock bound: it has a minute to arrive)."""
    pace = {**FAST, "chat_max_rate": 2 / 3600, "chat_burst": 2}  # then one every 30 min
    async with telegram_testbed(tmp_path, telegram=pace, run_worker=False) as bed:
        bed.fake.private_chat(ANN)
        bed.fake.private_chat(BOB)
        bot = bed.bot.application.bot
        ann = [asyncio.create_task(bot.send_message(ANN.id, f"n{i}")) for i in range(3)]
        await bed.fake.wait_for("sendMessage", lambda c: c["chat_id"] == ANN.id, count=2)
        await asyncio.wait_for(bot.send_message(BOB.id, "hi"), timeout=60)
        assert len(bed.fake.calls_to("sendMessage", lambda c: c["chat_id"] == ANN.id)) == 2
        assert not ann[2].done()
        for task in ann:
            task.cancel()
        await asyncio.gather(*ann, return_exceptions=True)


# -- with the real runtime ---------------------------------------------------------------------
@pytest.mark.slow
async def test_end_to_end_with_the_real_runtime(tmp_path):
    """One sticker through the real SEAL runtime process (builtin model, a few steps)."""
    from tests.runtime_helpers import running_runtime

    async with running_runtime() as (client, _, port):
        async with telegram_testbed(tmp_path, telegram=FAST, limits=LIMITS, adaptation={"steps": 3, "batch_size": 1},
                                    generation={"steps": 3}, runtime_url=f"http://127.0.0.1:{port}") as bed:
            await save_character(bed, ANN)
            bed.fake.send_text(ANN, "/mysticker happy waving beach")
            sent = await bed.fake.wait_for("sendSticker", lambda c: c["chat_id"] == ANN.id, timeout=120)
            assert_telegram_sticker(sent.files["sticker"].data)
            assert not bed.stub.jobs  # the stub was not asked
            assert bed.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1


async def test_unknown_commands_and_loose_pictures_get_a_hint_in_private_only(bed):
    fake = bed.fake
    fake.send_text(ANN, "/dance")
    await fake.wait_reply(ANN.id, contains="I don't know that command")
    fake.send_photo(ANN, reference_png())
    await fake.wait_reply(ANN.id, contains="reply /setref to it")
    group = fake.group_chat(-100777, "Chat")
    fake.send_text(ANN, "/dance", chat=group)
    fake.send_photo(ANN, reference_png(), chat=group)
    fake.send_text(ANN, "/status", chat=group)
    await fake.wait_reply(group["id"], contains="Nothing in the queue")
    assert len(fake.calls_to("sendMessage", lambda c: c["chat_id"] == group["id"])) == 1
    assert count(bed, "reference_images") == 0


async def test_a_sticker_refused_by_telegram_for_now_is_sent_again_later(tmp_path):
    """With no 429 retries left in the rate limiter, the sink raises and the JobWorker
    delivers the finished sticker again after its backoff, instead of dropping it."""
    no_retries = {**FAST, "max_retries": 0}
    fast_backoff = {**LIMITS, "retry_base_s": 0.2, "retry_max_s": 0.5, "delivery_attempts": 20}
    async with telegram_testbed(tmp_path, telegram=no_retries, limits=fast_backoff,
                                stub_options={"generate_steps": 4, "step_delay_s": 0.1}) as bed:
        fake = bed.fake
        await save_character(bed, ANN)
        fake.send_text(ANN, "/mysticker happy")
        await fake.wait_reply(ANN.id, contains="Queued")
        fake.flood(2.5)  # outlasts the job: its sticker is refused at least once
        sent = await fake.wait_for("sendSticker", lambda c: c["chat_id"] == ANN.id, timeout=20)
        refused = [c for c in fake.calls if c.method == "sendSticker" and c.status == 429]
        assert refused and refused[0].at < sent.at
        assert_telegram_sticker(sent.files["sticker"].data)
