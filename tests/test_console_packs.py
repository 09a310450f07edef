"""The console speaks /makepack and /export, and `stickerbot export` writes the same files."""

import asyncio
import io
import zipfile

from adapters.cli.commands import main as cli_main
from adapters.console import ConsoleSession, ConsoleSink
from benchmarks.bench_reliability import bench_settings, character_png
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.job_worker import JobWorker
from bot.messages import UserRef
from bot.service import StickerService
from bot.sticker_spec import validate_telegram_sticker
from seal_runtime.api.client import RuntimeClient
from storage.database import open_database

ME = UserRef("console", "me", "Me")


async def test_console_makes_a_12_sticker_pack_and_exports_it(tmp_path):
    async with running_stub_runtime() as stub:
        settings = bench_settings(str(tmp_path / "bot.sqlite"), stub.url)
        db = open_database(settings.general.database)
        client = RuntimeClient(stub.url)
        lines = []
        sink = ConsoleSink(tmp_path / "out", print_fn=lines.append)
        worker = JobWorker(db, settings, client, sink, worker_id="console")
        session = ConsoleSession(StickerService(db, settings), ME, tmp_path / "out")
        try:
            assert "/setref" in session.handle("/makepack")  # no character yet
            reference = tmp_path / "me.png"
            reference.write_bytes(character_png(0))
            assert "Saved" in session.handle(f"/setref {reference}")
            reply = session.handle("/makepack cozy winter")
            assert "pack of 12 stickers" in reply and "cozy winter" in reply
            while await worker.run_once():
                pass
            [paths] = sink.delivered.values()
            assert len(paths) == 12 and all(p.name.startswith("pack-1-sticker-") for p in paths)
            assert all(validate_telegram_sticker(p.read_bytes()) == [] for p in paths)
            assert any("Drawing your pack: 6/12" in line for line in lines)
            assert any("your pack: 12/12 stickers" in line for line in lines)
            assert len(stub.jobs) == 12 and all("cozy winter" in j.prompts[0] for j in stub.jobs)

            reply = session.handle("/export whatsapp")
            assert "12 stickers from your latest /makepack" in reply
            [wastickers] = (tmp_path / "out").glob("*.wastickers")
            webps = [n for n in zipfile.ZipFile(wastickers).namelist() if n.endswith(".webp")]
            assert len(webps) == 12
            assert "Signal Desktop" in session.handle("/export signal")
            assert "I can export as" in session.handle("/export line")
        finally:
            await client.close()
            db.close()


def test_stickerbot_export_command(tmp_path, monkeypatch, capsys):
    async def make_pack():
        async with running_stub_runtime() as stub:
            settings = bench_settings(str(tmp_path / "bot.sqlite"), stub.url)
            db = open_database(settings.general.database)
            client = RuntimeClient(stub.url)
            session = ConsoleSession(StickerService(db, settings), ME, tmp_path / "out")
            reference = tmp_path / "me.png"
            reference.write_bytes(character_png(0))
            session.handle(f"/setref {reference}")
            session.handle("/makepack 4")
            worker = JobWorker(db, settings, client, ConsoleSink(tmp_path / "out", print_fn=lambda *a: None))
            while await worker.run_once():
                pass
            await client.close()
            db.close()

    asyncio.run(make_pack())
    monkeypatch.setenv("STICKERBOT_GENERAL__DATABASE", str(tmp_path / "bot.sqlite"))
    target = tmp_path / "mine.wastickers"
    assert cli_main(["export", "--user", "console:me", "--format", "whatsapp", str(target)]) == 0
    assert "4 stickers from your latest /makepack" in capsys.readouterr().out
    assert len([n for n in zipfile.ZipFile(target).namelist() if n.endswith(".webp")]) == 4
    assert cli_main(["export", "--user", "console:me", "--format", "signal", str(tmp_path)]) == 0
    [signal] = tmp_path.glob("*-signal.zip")
    assert "cover.png" in zipfile.ZipFile(io.BytesIO(signal.read_bytes())).namelist()
    assert cli_main(["export", "--user", "console:nobody", "--format", "png-zip", str(tmp_path / "x.zip")]) == 1
    assert "no user console:nobody" in capsys.readouterr().err
    assert cli_main(["export", "--user", "me", "--format", "png-zip", str(tmp_path / "x.zip")]) == 2
