"""/cancel, the Cancel button and languages on Telegram, through PTB's real HTTP stack against
the fake Bot API and the stub runtime."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.bench_telegram import reference_png, telegram_testbed
from benchmarks.fakes.fake_bot_api import TgUser
from storage import jobs, usage, users
from tests.test_telegram_adapter import FAST, LIMITS, buttons, save_character

ANN = TgUser(1001, "Ann", "ann")
BOB = TgUser(1002, "Bob", "bob")
SLOW = {"adapt_steps": 40, "generate_steps": 5, "step_delay_s": 0.1}  # about 4.5 s a job


@pytest.fixture
async def bed(tmp_path):
    async with telegram_testbed(tmp_path, telegram=FAST, limits={**LIMITS, "requests_per_minute": 0},
                                stub_options=SLOW) as bed:
        yield bed


async def queued_reply(bed, user: TgUser, text: str):
    bed.fake.send_text(user, text)
    return await bed.fake.wait_for("sendMessage", lambda c: c["chat_id"] == user.id and (
        c["text"].startswith(("Queued", "Drawing a pack"))), count=1 + sum(
        1 for c in bed.fake.calls_to("sendMessage", lambda c: c["chat_id"] == user.id)
        if c["text"].startswith(("Queued", "Drawing a pack"))))


def edits_of(bed, message_id: int, chat_id: int):
    return bed.fake.calls_to("editMessageText", lambda c: c["message_id"] == message_id and c["chat_id"] == chat_id)


async def test_the_cancel_button_stops_a_running_job_for_its_owner_only(bed):
    fake = bed.fake
    await save_character(bed, ANN)
    queued = await queued_reply(bed, ANN, "/mysticker happy waving beach")
    [job] = jobs.active_jobs_for_user(bed.db, users.find_user(bed.db, "telegram", str(ANN.id)).id)
    assert buttons(queued) == [f"cx:{job.id}:{ANN.id}"]
    progress_id = queued.result["message_id"]
    edit = await fake.wait_for("editMessageText", lambda c: c["message_id"] == progress_id and "step" in c["text"])
    assert buttons(edit) == [f"cx:{job.id}:{ANN.id}"], "every progress edit keeps the button"

    message = fake.messages[(ANN.id, progress_id)]
    press = fake.press(BOB, message, f"cx:{job.id}:{ANN.id}")
    refusal = await fake.wait_for("answerCallbackQuery", lambda c: c["callback_query_id"] == press["id"])
    assert refusal["show_alert"] is True and "Only the person who asked" in refusal["text"]
    assert jobs.get_job(bed.db, job.id).running

    press = fake.press(ANN, message, f"cx:{job.id}:{ANN.id}")
    answered = await fake.wait_for("answerCallbackQuery", lambda c: c["callback_query_id"] == press["id"])
    assert answered["text"] == "Cancelled “happy, waving, beach”."
    final = await fake.wait_for("editMessageText", lambda c: c["message_id"] == progress_id
                                and c["text"] == "Cancelled.")
    assert not final.get("reply_markup"), "the button goes with the cancellation"
    assert jobs.get_job(bed.db, job.id).state == "cancelled"
    for _ in range(50):  # the runtime saw its client go (the worker checks every 0.5 s)
        if job.id in bed.stub.stopped:
            break
        await asyncio.sleep(0.1)
    assert job.id in bed.stub.stopped
    await asyncio.sleep(1.0)
    assert fake.calls_to("sendSticker") == [] and edits_of(bed, progress_id, ANN.id)[-1]["text"] == "Cancelled."
    assert usage.quota_used(bed.db, job.user_id) == 0


async def test_cancel_and_cancel_all(bed):
    fake = bed.fake
    fake.send_text(ANN, "/cancel")
    assert (await fake.wait_reply(ANN.id, contains="Nothing to cancel"))["text"] == (
        "Nothing to cancel: you have no sticker in the queue.")
    await save_character(bed, ANN)
    first = await queued_reply(bed, ANN, "/mysticker happy")
    second = await queued_reply(bed, ANN, "/mysticker sad")
    third = await queued_reply(bed, ANN, "/makepack 2")
    fake.send_text(ANN, "/cancel")
    await fake.wait_reply(ANN.id, contains="Cancelled your pack: 2 stickers")
    await fake.wait_for("editMessageText", lambda c: c["message_id"] == third.result["message_id"]
                        and c["text"] == "Cancelled.")
    fake.send_text(ANN, "/cancel all")
    reply = await fake.wait_reply(ANN.id, contains="Cancelled “sad, standing”.")
    assert reply["text"] == "Cancelled “sad, standing”.\nCancelled “happy, standing”."
    for queued in (first, second):
        await fake.wait_for("editMessageText", lambda c, q=queued: c["message_id"] == q.result["message_id"]
                            and c["text"] == "Cancelled.")
    user_id = users.find_user(bed.db, "telegram", str(ANN.id)).id
    assert jobs.active_jobs_for_user(bed.db, user_id) == [] and usage.quota_used(bed.db, user_id) == 0


async def test_a_spanish_telegram_app_gets_spanish_and_language_buttons_switch_it(tmp_path):
    carla = TgUser(1005, "Carla", "carla", language_code="es")
    async with telegram_testbed(tmp_path, telegram=FAST, limits=LIMITS) as bed:
        fake = bed.fake
        menus = {c.get("language_code"): c for c in fake.calls_to("setMyCommands")}
        assert set(menus) == {None, "es", "ru"}
        spanish = {c["command"]: c["description"] for c in menus["es"]["commands"]}
        assert spanish["cancel"].startswith("cancela tu último sticker") and spanish["language"] == (
            "el idioma en que te hablo")

        fake.send_text(carla, "/help")
        assert "Hago stickers de tu propio personaje." in (await fake.wait_reply(carla.id))["text"]
        fake.send_photo(carla, reference_png(), caption="/setref")
        await fake.wait_reply(carla.id, contains="¡Personaje guardado!")
        fake.send_text(carla, "/mysticker feliz saludando playa")
        queued = await fake.wait_reply(carla.id, contains="En la cola")
        assert queued["text"].startswith("En la cola, posición 1: feliz, saludando, playa.")
        assert queued["reply_markup"]["inline_keyboard"][0][0]["text"] == "✖ Cancelar"
        sent = await fake.wait_for("sendSticker")
        assert [b["text"] for b in sent["reply_markup"]["inline_keyboard"][0]] == [
            "➕ Añadir al pack", "🔁 Otra", "🗑 Borrar"]

        fake.send_text(carla, "/language")
        menu = await fake.wait_reply(carla.id, contains="Te hablo en Español")
        russian = next(b for row in menu["reply_markup"]["inline_keyboard"] for b in row if b["text"] == "Русский")
        fake.press(carla, menu.result, russian["callback_data"])
        await fake.wait_for("editMessageText", lambda c: c["text"] == "Теперь я говорю с вами на языке: Русский.")
        assert users.find_user(bed.db, "telegram", str(carla.id)).language == "ru"
        fake.send_text(carla, "/cancel")
        await fake.wait_reply(carla.id, contains="Нечего отменять")
