"""`stickerbot discord` as an operator starts it: token sources and clear start-up errors."""

from __future__ import annotations

import asyncio
import os
import sys

from adapters.cli.commands import main as stickerbot
from benchmarks.fakes.fake_discord_api import running_fake_discord


def test_stickerbot_discord_without_a_token_says_so(monkeypatch, capsys):
    for name in ("DISCORD_BOT_TOKEN", "STICKERBOT_DISCORD__TOKEN", "STICKERBOT_DISCORD__TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert stickerbot(["discord"]) == 2
    assert "no Discord token" in capsys.readouterr().err


async def test_stickerbot_discord_with_a_rejected_token_file_exits_clearly_without_logging_it(tmp_path):
    secret = "MTIz.wrong-but-secret-token.value"
    token_file = tmp_path / "discord.token"
    token_file.write_text(secret + "\n")
    async with running_fake_discord() as fake:
        env = {k: v for k, v in os.environ.items() if k != "DISCORD_BOT_TOKEN"}
        env.update({
            "STICKERBOT_DISCORD__TOKEN_FILE": str(token_file),
            "STICKERBOT_DISCORD__API_BASE": fake.api_base,
            "STICKERBOT_GENERAL__DATABASE": str(tmp_path / "bot.sqlite"),
            "STICKERBOT_GENERAL__RUNTIME_URL": "http://127.0.0.1:9",  # no runtime: the bot says so and goes on
            "STICKERBOT_GENERAL__LOG_LEVEL": "DEBUG",
        })
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli.commands", "discord", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    logs = stdout.decode() + stderr.decode()
    assert process.returncode == 2, logs[-2000:]
    assert "Discord rejected the bot token" in logs
    assert "runtime is not reachable yet" in logs
    assert secret not in logs
    assert fake.calls_to("GET", "/users/@me")
