"""Each shipped language end to end in the console: the help, a refusal and a sticker request,
answered in the user's language (from the terminal's, or /language), through the real job
worker and the stub runtime; replies name the parsed tags in that language."""

from __future__ import annotations

import pytest

from adapters.console import ConsoleSession, ConsoleSink, terminal_language
from benchmarks.bench_reliability import bench_settings, character_png
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.job_worker import JobWorker
from bot.messages import UserRef
from bot.service import StickerService
from seal_runtime.api.client import RuntimeClient
from storage import users
from storage.database import open_database

# language, the terminal's locale, and what a reply in it must say
LANGUAGES = {
    "en": ("en_US", {
        "help": ["I make stickers of your own character.", "• emotion: happy, sad, angry"],
        "refusal": "You have not saved a character yet.",
        "saved": "Saved your character!",
        "request": "happy waving beach",
        "queued": "Queued at position 1: happy, waving, beach.",
        "progress": "Learning your character (step 1/3)",
        "delivered": "😊 happy, waving, beach ->",
        "blocked": "Sorry, I can't make that sticker.",
    }),
    "es": ("es_ES", {
        "help": ["Hago stickers de tu propio personaje.", "• emoción: feliz, triste, enfadado"],
        "refusal": "Aún no guardaste ningún personaje.",
        "saved": "¡Personaje guardado!",
        "request": "feliz saludando en la playa",
        "queued": "En la cola, posición 1: feliz, saludando, playa.",
        "progress": "Aprendiendo tu personaje (paso 1/3)",
        "delivered": "😊 feliz, saludando, playa ->",
        "blocked": "Lo siento, no puedo hacer ese sticker.",
    }),
    "ru": ("ru_RU", {
        "help": ["Я делаю стикеры с вашим собственным персонажем.", "• эмоция: радость, грусть, злость"],
        "refusal": "Вы ещё не сохранили персонажа.",
        "saved": "Персонаж сохранён!",
        "request": "весёлый машет рукой на пляже",
        "queued": "В очереди, место 1: радость, машет рукой, пляж.",
        "progress": "Изучаю вашего персонажа (шаг 1/3)",
        "delivered": "😊 радость, машет рукой, пляж ->",
        "blocked": "Извините, такой стикер я сделать не могу.",
    }),
}


@pytest.mark.parametrize("code", list(LANGUAGES))
async def test_the_console_speaks_each_language_end_to_end(tmp_path, monkeypatch, code):
    locale, said = LANGUAGES[code]
    monkeypatch.setenv("LANG", f"{locale}.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    async with running_stub_runtime() as stub:
        settings = bench_settings(str(tmp_path / "bot.sqlite"), stub.url, blocklist=("badword",))
        db = open_database(settings.general.database)
        client = RuntimeClient(stub.url)
        lines: list[str] = []
        sink = ConsoleSink(tmp_path / "out", print_fn=lines.append)
        worker = JobWorker(db, settings, client, sink, worker_id="console")
        me = UserRef("console", "me", "Me", language=terminal_language())
        session = ConsoleSession(StickerService(db, settings), me, tmp_path / "out", sink=sink)
        try:
            help_text = session.handle("/help")
            assert all(part in help_text for part in said["help"]), help_text
            assert said["refusal"] in session.handle(f"/mysticker {said['request']}")  # no character yet
            reference = tmp_path / "me.png"
            reference.write_bytes(character_png(0))
            assert said["saved"] in session.handle(f"/setref {reference}")
            assert said["blocked"] in session.handle("/mysticker badword")
            assert said["queued"] in session.handle(f"/mysticker {said['request']}")
            while await worker.run_once():
                pass
            assert any(said["progress"] in line for line in lines), lines
            assert any(said["delivered"] in line for line in lines), lines
            assert "waving one arm" in stub.jobs[0].prompts[0] and "sunny beach" in stub.jobs[0].prompts[0]
        finally:
            await client.close()
            db.close()


async def test_language_overrides_the_terminal_and_is_kept_per_user(tmp_path):
    settings = bench_settings(str(tmp_path / "bot.sqlite"), "http://127.0.0.1:9")
    db = open_database(settings.general.database)
    service = StickerService(db, settings)
    me = UserRef("console", "me", "Me", language="en_GB")
    session = ConsoleSession(service, me, tmp_path / "out")
    try:
        assert "I speak English with you" in session.handle("/language")
        assert session.handle("/language ru") == "Теперь я говорю с вами на языке: Русский."
        assert users.find_user(db, "console", "me").language == "ru"
        assert "Я делаю стикеры" in ConsoleSession(service, me, tmp_path / "out").handle("/help")  # kept
        assert session.handle("/language klingon").startswith(
            "Я говорю на языках: en (English), es (Español), ru (Русский).")
        assert users.find_user(db, "console", "me").language == "ru"  # unchanged
        assert session.handle("/language Español") == "A partir de ahora te hablo en Español."
        assert session.handle("/language auto") == "From now on I speak English with you."
        assert users.find_user(db, "console", "me").language is None
        other = UserRef("console", "you", "You", language="es")  # another user keeps their own
        assert "Hago stickers" in ConsoleSession(service, other, tmp_path / "out").handle("/help")
    finally:
        db.close()
