"""No command prints a bot token: not in its messages, not in its logs, not in a traceback.
`stickerbot run` with a token Telegram rejects says so in one line, like `stickerbot telegram`;
and whatever escapes as an uncaught exception is written with every secret replaced by ***."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from benchmarks.fakes.fake_bot_api import running_fake_bot_api

REJECTED = "987654:THIS-token-is-secret-and-wrong"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STICKERBOT_", "TELEGRAM_", "DISCORD_"))}
    env.update(extra)
    return env


@pytest.mark.slow  # a real `stickerbot` process
async def test_stickerbot_run_with_a_rejected_telegram_token_says_so_without_the_token(
    tmp_path,
):
    import asyncio

    async with running_fake_bot_api() as fake:
        env = clean_env(
            TELEGRAM_BOT_TOKEN=REJECTED,
            STICKERBOT_TELEGRAM__BASE_URL=fake.base_url,
            STICKERBOT_TELEGRAM__BASE_FILE_URL=fake.base_file_url,
            STICKERBOT_GENERAL__ADAPTERS="telegram",
            STICKERBOT_GENERAL__HEALTH_PORT="0",
            STICKERBOT_GENERAL__DATABASE=str(tmp_path / "bot.sqlite"),
            STICKERBOT_GENERAL__RUNTIME_URL="http://127.0.0.1:9",
            STICKERBOT_GENERAL__LOG_LEVEL="DEBUG",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli.commands",
            "run",
            "--no-runtime",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    output = stdout.decode() + stderr.decode()
    assert REJECTED not in output and REJECTED.split(":")[1] not in output, output[-3000:]
    assert process.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    assert "Telegram rejected the bot token" in stderr.decode()


def test_an_uncaught_exception_anywhere_is_printed_with_secrets_redacted(tmp_path):
    secret = "424242:ANOTHER-secret-value"
    script = textwrap.dedent(f"""
        import asyncio, threading
        from bot.log_format import configure_logging, install_redacting_output, register_secret
        install_redacting_output()
        configure_logging("INFO", "text")
        register_secret({secret!r})
        print("printed: {secret}")
        def in_thread():
            raise ValueError("thread {secret}")
        thread = threading.Thread(target=in_thread)
        thread.start(); thread.join()
        async def failing():
            raise KeyError("task {secret}")
        async def main():
            task = asyncio.get_running_loop().create_task(failing())
            await asyncio.sleep(0.05)
            del task
            import gc; gc.collect()
        asyncio.run(main())
        raise RuntimeError("main {secret}")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert secret not in output and secret.split(":")[1] not in output, output
    for seen in ("printed: ***", "thread ***", "task ***", "main ***"):
        assert seen in output, output
