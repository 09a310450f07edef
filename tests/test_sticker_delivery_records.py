"""A job with several stickers: each sticker the platform accepted is recorded, so when a
later one fails and the delivery is retried, only what is missing is sent again."""

from __future__ import annotations

import asyncio

from benchmarks.bench_telegram import telegram_testbed
from storage import stickers
from tests.test_telegram_adapter import ANN, FAST, LIMITS, buttons, save_character


async def test_a_retried_telegram_delivery_sends_only_the_stickers_not_yet_sent(
    tmp_path,
):
    no_retries = {**FAST, "max_retries": 0}  # a 429 reaches the sink at once
    fast_backoff = {
        **LIMITS,
        "retry_base_s": 0.2,
        "retry_max_s": 0.5,
        "delivery_attempts": 20,
    }
    async with telegram_testbed(
        tmp_path,
        telegram=no_retries,
        limits=fast_backoff,
        generation={"images_per_request": 3},
    ) as bed:
        fake = bed.fake

        def flood_after_the_first_sticker(call) -> None:
            if call.method == "sendSticker" and len(fake.calls_to("sendSticker")) == 1:
                fake.flood(1.0)  # the second and third are refused for a moment

        fake.on_call.append(flood_after_the_first_sticker)
        await save_character(bed, ANN)
        fake.send_text(ANN, "/mysticker happy")
        await fake.wait_for("sendSticker", lambda c: c["chat_id"] == ANN.id, count=3, timeout=30)
        sent_ids = [int(buttons(c)[0].split(":")[1]) for c in fake.calls_to("sendSticker")]
        assert [c.status for c in fake.calls if c.method == "sendSticker"].count(429) >= 1
        assert len(sent_ids) == 3 and len(set(sent_ids)) == 3, f"a sticker was sent twice: {sent_ids}"
        user_id, job_id = bed.db.execute("SELECT user_id, id FROM jobs").fetchone()
        for _ in range(100):  # the record is written just after Telegram's answer arrives
            if stickers.sent_sticker_ids(bed.db, user_id, job_id) == set(sent_ids):
                break
            await asyncio.sleep(0.05)
        assert stickers.sent_sticker_ids(bed.db, user_id, job_id) == set(sent_ids)


async def test_a_retried_discord_delivery_sends_only_the_stickers_not_yet_sent(
    tmp_path,
):
    from benchmarks.fakes.fake_discord_api import CHANNEL_ID
    from tests.test_discord_adapter import ANN as DC_ANN
    from tests.test_discord_adapter import discord_testbed
    from tests.test_discord_adapter import save_character as dc_save_character

    async with discord_testbed(tmp_path, generation={"images_per_request": 3}) as bed:
        await dc_save_character(bed)
        bed.fake.refuse_next.append(("POST", f"/channels/{CHANNEL_ID}/messages"))  # the second sticker, once
        bed.act(bed.fake.slash(DC_ANN, "mysticker", [{"name": "prompt", "type": 3, "value": "happy"}]))
        await bed.fake.wait_for(
            "POST",
            f"/channels/{CHANNEL_ID}/messages",
            lambda c: c.status == 200,
            count=2,
            timeout=30,
        )
        await asyncio.sleep(1.0)  # a resend of the first would come with the retry
        original = [c for c in bed.fake.calls if c.method == "PATCH" and "@original" in c.path and c.files]
        posted = [c for c in bed.fake.calls if c.method == "POST" and c.path.endswith(f"/{CHANNEL_ID}/messages")]
        assert len(original) == 1  # the first sticker replaced the "Queued" answer, once
        assert [c.status for c in posted] == [
            400,
            200,
            200,
        ]  # the refused one, then the second and third
        user_id, job_id = bed.db.execute("SELECT user_id, id FROM jobs").fetchone()
        assert len(stickers.sent_sticker_ids(bed.db, user_id, job_id)) == 3
