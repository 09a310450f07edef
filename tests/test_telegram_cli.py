"""`stickerbot telegram` as an operator runs it, and `stickerbot bench telegram`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from adapters.cli.commands import main as stickerbot
from benchmarks.fakes.fake_bot_api import TgUser, running_fake_bot_api
from benchmarks.fakes.stub_runtime import running_stub_runtime


async def test_stickerbot_telegram_reads_the_token_file_answers_and_stops_on_sigterm(tmp_path):
    async with running_fake_bot_api() as fake, running_stub_runtime() as stub:
        token_file = tmp_path / "telegram.token"
        token_file.write_text(fake.token + "\n")
        env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"}
        env.update({
            "STICKERBOT_TELEGRAM__TOKEN_FILE": str(token_file),
            "STICKERBOT_TELEGRAM__BASE_URL": fake.base_url,
            "STICKERBOT_TELEGRAM__BASE_FILE_URL": fake.base_file_url,
            "STICKERBOT_GENERAL__DATABASE": str(tmp_path / "bot.sqlite"),
            "STICKERBOT_GENERAL__RUNTIME_URL": stub.url,
            "STICKERBOT_GENERAL__LOG_LEVEL": "DEBUG",
        })
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli.commands", "telegram", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            fake.send_text(TgUser(31, "Cli"), "/help")
            reply = await fake.wait_reply(31, timeout=60)
            assert "/mysticker" in reply["text"]
            assert fake.calls_to("setMyCommands")
        finally:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    logs = stdout.decode() + stderr.decode()
    assert "telegram bot started" in logs
    assert fake.token not in logs and fake.token.split(":")[1] not in logs


def test_stickerbot_telegram_without_a_token_says_so(monkeypatch, capsys):
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("STICKERBOT_TELEGRAM__TOKEN", raising=False)
    monkeypatch.delenv("STICKERBOT_TELEGRAM__TOKEN_FILE", raising=False)
    assert stickerbot(["telegram"]) == 2
    assert "no Telegram token" in capsys.readouterr().err


def test_bench_telegram_quick_writes_its_figures(tmp_path):
    path = tmp_path / "telegram.json"
    assert stickerbot(["bench", "telegram", "--quick", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    for run in ("at_200_per_s", "saturation", "with_telegram_limits"):
        assert figures[run]["commands"] > 0 and figures[run]["commands_per_s"] > 0
        assert 0 < figures[run]["latency_ms"]["p50"] <= figures[run]["latency_ms"]["p99"]
    assert figures["sticker_path"]["stickers"] >= 1
    assert set(figures["targets"]) == {"commands_per_s>=200", "keeps_up_at_200_per_s", "p99_ms_at_200_per_s<=50"}
