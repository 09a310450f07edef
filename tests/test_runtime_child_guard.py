"""`stickerbot run`'s runtime child: a fresh secret per launch, always required, and the bot
talks only to the child it started — not to a process that took the port meanwhile."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from adapters.cli.runtime_child import free_port
from adapters.cli.runtime_guard import ChildRuntimeClient, owns_listener
from adapters.cli.supervisor import RuntimeSupervisor, Supervisor, spawn_child
from bot.settings import Settings
from seal_runtime.api.protocol import SECRET_HEADER, RuntimeJobError
from tests.runtime_helpers import FAST_ENV
from tests.test_reliability_supervisor import FAST, wait_for


async def post_job(port: int, secret: str | None) -> int:
    headers = {SECRET_HEADER: secret} if secret else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/v1/jobs", json={}, headers=headers) as resp,
    ):
        return resp.status


async def test_the_real_runtime_child_requires_a_fresh_secret_per_launch(tmp_path, monkeypatch):
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    base = Settings()
    settings = replace(base, general=replace(base.general, runtime_url=f"http://127.0.0.1:{port}"))
    client = ChildRuntimeClient(settings.general.runtime_url)
    runtime = RuntimeSupervisor(Supervisor(settings)._spawn_for_settings(), client, **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await asyncio.wait_for(runtime.became_healthy.wait(), 120)
        first_secret = client.secret
        assert first_secret and len(first_secret) >= 32
        assert await post_job(port, None) == 401  # a local user without the secret gets nothing done
        assert await post_job(port, "guess") == 401
        assert await post_job(port, first_secret) == 400  # past the check: an empty job is a bad request
        runtime.process.send_signal(signal.SIGKILL)
        await wait_for(lambda: runtime.status.restarts == 1 and runtime.status.healthy, timeout=120)
        assert client.secret != first_secret
        assert await post_job(port, first_secret) == 401  # the old launch's secret opens nothing
        assert await post_job(port, client.secret) == 400
    finally:
        stop.set()
        await task
        await client.close()


async def test_a_process_that_takes_the_port_during_a_restart_gets_nothing_from_the_bot():
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "benchmarks.fakes.reliability_stub",
        "--port",
        str(port),
    ]
    client = ChildRuntimeClient(f"http://127.0.0.1:{port}")
    runtime = RuntimeSupervisor(
        lambda secret: spawn_child(command),
        client,
        **{**FAST, "backoff_initial_s": 1.0, "backoff_max_s": 1.0},
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    received: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        received.append(f"{request.method} {request.path} {dict(request.headers).get(SECRET_HEADER)}")
        return web.json_response({"status": "ok", "model_id": "impostor", "device": "cpu"})

    impostor = web.AppRunner(web.Application(middlewares=[]))
    impostor.app.router.add_route("*", "/{tail:.*}", anything)
    await impostor.setup()
    try:
        await asyncio.wait_for(runtime.became_healthy.wait(), 20)
        assert owns_listener(runtime.process.pid, port)
        runtime.process.send_signal(signal.SIGKILL)
        await runtime.process_exited()
        await web.TCPSite(impostor, "127.0.0.1", port).start()  # takes the port before the restart
        await wait_for(lambda: runtime.status.starts >= 2, timeout=20)
        await asyncio.sleep(1.0)  # health checks run meanwhile
        assert not runtime.status.healthy
        with pytest.raises(RuntimeJobError, match="not the runtime child|not running"):
            await client.health()
        assert received == []  # not a health check, not a job, not the secret
    finally:
        stop.set()
        await task
        await client.close()
        await impostor.cleanup()


async def test_while_the_child_is_still_starting_whoever_holds_the_port_is_not_talked_to():
    """The real runtime loads its model before it binds the port (seconds on a GPU box)."""
    port = free_port()
    received: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        received.append(f"{request.method} {request.path}")
        return web.json_response({"status": "ok", "model_id": "impostor", "device": "cpu"})

    impostor = web.AppRunner(web.Application())
    impostor.app.router.add_route("*", "/{tail:.*}", anything)
    await impostor.setup()
    await web.TCPSite(impostor, "127.0.0.1", port).start()
    slow_to_bind = [sys.executable, "-c", "import time; time.sleep(60)"]
    client = ChildRuntimeClient(f"http://127.0.0.1:{port}")
    runtime = RuntimeSupervisor(lambda secret: spawn_child(slow_to_bind), client, **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await wait_for(lambda: runtime.process is not None and client.pid == runtime.process.pid)
        await asyncio.sleep(1.0)
        assert not runtime.status.healthy
        with pytest.raises(RuntimeJobError, match="not the runtime child"):
            await client.health()
        assert received == []
    finally:
        stop.set()
        await task
        await client.close()
        await impostor.cleanup()


def test_the_runtime_child_does_not_inherit_the_bot_tokens(monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:secret-token-for-the-bot-only")
    monkeypatch.setenv("STICKERBOT_DISCORD__TOKEN", "discord-secret-token")
    child = spawn_child(
        [
            sys.executable,
            "-c",
            "import os; print(sorted(k for k in os.environ if 'TOKEN' in k))",
        ],
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = child.communicate(timeout=30)
    assert out.decode().strip() == "[]"
