"""/cancel, the Cancel button and languages on Discord, through discord.py's real REST stack
against the fake Discord (which refuses a command sync with a bad localisation, as Discord does)."""

from __future__ import annotations

import asyncio

from benchmarks.bench_telegram import reference_png
from benchmarks.fakes.fake_discord_api import APP_ID, DcUser, buttons_of
from benchmarks.fakes.stub_runtime import StubRuntime
from storage import jobs, usage, users
from tests.test_discord_adapter import ANN, BOB, answer_of, discord_testbed, private_text, save_character

SLOW = StubRuntime(adapt_steps=40, generate_steps=5, step_delay_s=0.1)
ANA = DcUser(100000000000000011, "Ana", locale="es-ES")
IVAN = DcUser(100000000000000012, "Ivan", locale="ru")


def synced(bed, name: str) -> dict:
    return next(c for c in bed.fake.calls_to("PUT", f"/applications/{APP_ID}/commands")[-1].json if c["name"] == name)


async def test_slash_commands_are_localised_for_spanish_and_russian_clients(tmp_path):
    async with discord_testbed(tmp_path) as bed:
        mysticker = synced(bed, "mysticker")
        assert mysticker["name_localizations"] == {"es-ES": "misticker", "es-419": "misticker", "ru": "мойстикер"}
        assert mysticker["description_localizations"]["ru"].startswith("Новый стикер")
        prompt = mysticker["options"][0]
        assert prompt["name"] == "prompt" and prompt["name_localizations"]["es-ES"] == "texto"
        assert synced(bed, "cancel")["name_localizations"]["ru"] == "отмена"
        menu = synced(bed, "Use as my sticker reference")
        assert menu["name_localizations"]["es-419"] == "Usar como mi personaje de stickers"

        help_reply = await private_text(bed, bed.act(bed.fake.slash(IVAN, "help")))
        assert help_reply.startswith("Я делаю стикеры с вашим собственным персонажем.")
        assert "/setref с прикреплённой картинкой" in help_reply


async def test_a_spanish_member_gets_spanish_and_the_cancel_button_stops_the_job(tmp_path):
    async with discord_testbed(tmp_path, stub=SLOW) as bed:
        fake = bed.fake
        attachment = fake.attachment(reference_png())
        saved = bed.act(fake.slash(ANA, "setref", [{"name": "image", "type": 11, "value": attachment["id"]}],
                                   resolved={"attachments": {attachment["id"]: attachment}}))
        assert (await private_text(bed, saved)).startswith("¡Personaje guardado!")

        payload = bed.act(fake.slash(ANA, "mysticker", [{"name": "prompt", "type": 3, "value": "feliz saludando playa"}]))
        first = await answer_of(bed, payload)
        assert first["data"]["content"].startswith("En la cola, posición 1: feliz, saludando, playa.")
        [job] = jobs.active_jobs_for_user(bed.db, users.find_user(bed.db, "discord", str(ANA.id)).id)
        [cancel_id] = buttons_of(first["data"])
        assert cancel_id == f"cx:{job.id}:{ANA.id}"
        await fake.wait_for("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original",
                            lambda c: "Aprendiendo tu personaje" in (c.json.get("content") or ""))
        message = fake.original_of(payload)
        assert buttons_of(message) == [cancel_id], "progress edits keep the button"

        refusal = await private_text(bed, bed.act(fake.press(BOB, message, cancel_id)))
        assert refusal == "Only the member who asked for this sticker can cancel it."  # in Bob's language
        assert jobs.get_job(bed.db, job.id).running

        press = bed.act(fake.press(ANA, message, cancel_id))
        update = await answer_of(bed, press)
        assert update["type"] == 7 and update["data"]["content"] == "Cancelado." and update["data"]["components"] == []
        assert jobs.get_job(bed.db, job.id).state == "cancelled"
        for _ in range(50):
            if job.id in bed.stub.stopped:
                break
            await asyncio.sleep(0.1)
        assert job.id in bed.stub.stopped
        await asyncio.sleep(1.0)
        assert not any(c.files for c in fake.calls_to("PATCH", payload["token"]))  # no sticker came
        assert fake.original_of(payload)["content"] == "Cancelado."
        assert usage.quota_used(bed.db, job.user_id) == 0


async def test_cancel_and_cancel_all(tmp_path):
    async with discord_testbed(tmp_path, stub=SLOW) as bed:
        fake = bed.fake
        assert await private_text(bed, bed.act(fake.slash(ANN, "cancel"))) == (
            "Nothing to cancel: you have no sticker in the queue.")
        await save_character(bed)
        asked = []
        for words in ("happy", "sad"):
            payload = bed.act(fake.slash(ANN, "mysticker", [{"name": "prompt", "type": 3, "value": words}]))
            await answer_of(bed, payload)
            asked.append(payload)
        everything = bed.act(fake.slash(ANN, "cancel", [{"name": "all", "type": 5, "value": True}]))
        assert await private_text(bed, everything) == "Cancelled “sad, standing”.\nCancelled “happy, standing”."
        for payload in asked:
            await fake.wait_for("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original",
                                lambda c: c.json.get("content") == "Cancelled." and c.json.get("components") == [])
        user_id = users.find_user(bed.db, "discord", str(ANN.id)).id
        assert jobs.active_jobs_for_user(bed.db, user_id) == [] and usage.quota_used(bed.db, user_id) == 0


async def test_autocomplete_completes_with_the_members_own_words(tmp_path):
    async with discord_testbed(tmp_path) as bed:
        payload = bed.act(bed.fake.slash(ANA, "mysticker", [{"name": "prompt", "type": 3, "value": "feliz sal",
                                                             "focused": True}], autocomplete=True))
        answer = await answer_of(bed, payload)
        assert [c["value"] for c in answer["data"]["choices"]] == ["feliz saludando", "feliz saltando"]
