"""Retention goes by use: a sticker its owner keeps using (a button under it, adding it to a
pack or a server, a pack it is in being added to) is kept however old it is; references no
queued job needs are removed when a new one is saved and by housekeeping, with their
embeddings; and /setref has a per-user rate limit."""

from __future__ import annotations

import pytest

from benchmarks.bench_reliability import character_png
from benchmarks.bench_telegram import telegram_testbed
from benchmarks.fakes.fake_discord_api import (
    MANAGE_EXPRESSIONS,
    MEMBER_DEFAULT,
    buttons_of,
)
from bot.errors import UserError
from bot.retention import DAY_S, expire_unused
from storage import embeddings, jobs, references, stickers
from tests.test_discord_adapter import ANN as DC_ANN
from tests.test_discord_adapter import answer_of, discord_testbed, private_text
from tests.test_discord_adapter import save_character as dc_save_character
from tests.test_discord_adapter import sticker_for as dc_sticker_for
from tests.test_reliability_policy import ANN, BOB, make_service, with_character
from tests.test_telegram_adapter import ANN as TG_ANN
from tests.test_telegram_adapter import FAST, buttons, save_character, sticker_for

OLD = 100 * DAY_S  # older than the 90-day retention


def age_all_stickers(db, seconds: float) -> None:
    db.execute(
        "UPDATE stickers SET created_at = created_at - ?, last_used_at = last_used_at - ?",
        [seconds, seconds],
    )


def surviving_ids(db) -> set[int]:
    expire_unused(db, 90)
    return {r[0] for r in db.execute("SELECT id FROM stickers")}


# -- stickers --------------------------------------------------------------------------------------
async def test_telegram_stickers_in_use_outlive_retention_and_unused_ones_go(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST) as bed:
        fake = bed.fake
        await save_character(bed, TG_ANN)
        _, _, first = await sticker_for(bed, TG_ANN)
        _, _, second = await sticker_for(bed, TG_ANN, "/mysticker sad sitting", nth=2)
        _, _, third = await sticker_for(bed, TG_ANN, "/mysticker love jumping", nth=3)
        first_id, second_id, third_id = (int(buttons(s)[0].split(":")[1]) for s in (first, second, third))
        age_all_stickers(bed.db, OLD)

        fake.press(TG_ANN, first.result, buttons(first)[0])  # Add to pack (creates the pack)
        await fake.wait_for("createNewStickerSet")
        await fake.wait_reply(TG_ANN.id, contains="addstickers")
        age_all_stickers(bed.db, OLD)
        fake.press(TG_ANN, second.result, buttons(second)[0])  # Add to pack: the pack is used again
        await fake.wait_for("addStickerToSet")
        await fake.wait_reply(TG_ANN.id, contains="Added to your pack")
        fake.press(TG_ANN, third.result, buttons(third)[1])  # Again
        await fake.wait_for("sendSticker", lambda c: c["chat_id"] == TG_ANN.id, count=4)
        fresh_id = max(r[0] for r in bed.db.execute("SELECT id FROM stickers"))
        owner = bed.db.execute("SELECT user_id FROM stickers").fetchone()[0]
        unused = stickers.save_sticker(bed.db, owner, None, character_png(5), "😀", now=1.0)  # never used
        assert surviving_ids(bed.db) == {first_id, second_id, third_id, fresh_id}
        assert unused.id not in surviving_ids(bed.db)


async def test_discord_stickers_in_use_outlive_retention(tmp_path):
    async with discord_testbed(tmp_path) as bed:
        await dc_save_character(bed)
        _, message = await dc_sticker_for(bed)
        first_id = bed.db.execute("SELECT MAX(id) FROM stickers").fetchone()[0]
        await dc_sticker_for(bed, prompt="sad sitting")
        second_id = bed.db.execute("SELECT MAX(id) FROM stickers").fetchone()[0]
        age_all_stickers(bed.db, OLD)

        added = bed.act(
            bed.fake.slash(
                DC_ANN,
                "sticker-add",
                [{"name": "name", "type": 3, "value": "ann waves"}],
                permissions=MEMBER_DEFAULT | MANAGE_EXPRESSIONS,
            )
        )  # the newest: second
        assert "Added" in await private_text(bed, added)
        again = bed.act(bed.fake.press(DC_ANN, message, buttons_of(message)[0]))  # Again under the first
        assert (await answer_of(bed, again))["data"]["content"].startswith("Queued")
        assert {first_id, second_id} <= surviving_ids(bed.db)


# -- references ------------------------------------------------------------------------------------
def reference_count(service, person) -> int:
    return len(references.references_for_user(service.db, service.user_id(person)))


def test_a_new_character_removes_old_pictures_no_queued_job_needs_with_their_embeddings(
    tmp_path,
):
    service, _ = make_service(tmp_path, requests_per_minute=0, setrefs_per_hour=0)
    service.set_reference(ANN, character_png(1))
    old = references.active_reference(service.db, service.user_id(ANN))
    embeddings.put_embedding(service.db, old.sha256, "m", "h", b"emb")
    queued = service.request_sticker(ANN, "happy", {})  # this job still needs picture 1
    for i in range(2, 6):
        service.set_reference(ANN, character_png(i))
    assert reference_count(service, ANN) == 2  # picture 1 for the queued job, and the active one
    assert embeddings.exists(service.db, old.sha256, "m", "h")
    job = jobs.claim_next_job(service.db, "w", 60)
    assert job.id == queued.job_id
    jobs.finish_job(service.db, job.id, {}, worker_id="w")
    service.set_reference(ANN, character_png(6))
    assert reference_count(service, ANN) == 1
    assert not embeddings.exists(service.db, old.sha256, "m", "h")


def test_housekeeping_removes_pictures_once_their_jobs_finished(tmp_path):
    service, _ = make_service(tmp_path, requests_per_minute=0)
    with_character(service, ANN, BOB)
    queued = service.request_sticker(ANN, "happy", {})
    service.set_reference(ANN, character_png(7))
    assert reference_count(service, ANN) == 2
    job = jobs.claim_next_job(service.db, "w", 60)
    jobs.finish_job(service.db, job.id, {}, worker_id="w")
    assert job.id == queued.job_id
    expire_unused(service.db, 90)
    assert reference_count(service, ANN) == 1 and reference_count(service, BOB) == 1


def test_a_picture_another_user_also_saved_keeps_its_embedding(tmp_path):
    service, _ = make_service(tmp_path, setrefs_per_hour=0)
    service.set_reference(ANN, character_png(1))
    service.set_reference(BOB, character_png(1))  # the same picture
    shared = references.active_reference(service.db, service.user_id(ANN))
    embeddings.put_embedding(service.db, shared.sha256, "m", "h", b"emb")
    service.set_reference(ANN, character_png(2))
    assert reference_count(service, ANN) == 1
    assert embeddings.exists(service.db, shared.sha256, "m", "h")  # Bob's character still uses it


# -- /setref rate limit ----------------------------------------------------------------------------
def test_setref_has_a_per_user_rate_limit_that_says_when_to_come_back(tmp_path):
    service, clock = make_service(tmp_path, setrefs_per_hour=3)
    for i in range(3):
        service.set_reference(ANN, character_png(i))
        clock.now += 60
    with pytest.raises(UserError) as refused:
        service.set_reference(ANN, character_png(9))
    assert refused.value.code == "setref_rate_limited" and "57 min" in refused.value.user_message
    service.set_reference(BOB, character_png(9))  # per user
    clock.now += 57 * 60
    service.set_reference(ANN, character_png(9))


def test_a_refused_picture_does_not_count_against_the_setref_limit(tmp_path):
    service, _ = make_service(tmp_path, setrefs_per_hour=1)
    with pytest.raises(UserError) as broken:
        service.set_reference(ANN, b"not a picture")
    assert broken.value.code == "not_an_image"
    service.set_reference(ANN, character_png(1))
