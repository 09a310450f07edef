"""Start the real runtime (`stickerbot runtime`) in a subprocess for tests."""

from __future__ import annotations

import asyncio
import contextlib

from adapters.cli.runtime_child import free_port, spawn_runtime, stop_runtime, wait_healthy
from seal_runtime.api.client import RuntimeClient

FAST_ENV = {
    "STICKERBOT_ADAPTATION__STEPS": "3",
    "STICKERBOT_ADAPTATION__BATCH_SIZE": "1",
    "STICKERBOT_GENERATION__STEPS": "3",
    "STICKERBOT_RUNTIME__DEVICE": "cpu",
    "STICKERBOT_GENERAL__LOG_FORMAT": "text",
}


@contextlib.asynccontextmanager
async def running_runtime(extra_env: dict | None = None, secret: str | None = None):
    port = free_port()
    env = {**FAST_ENV, **(extra_env or {})}
    if secret:
        env["STICKERBOT_RUNTIME__SHARED_SECRET"] = secret
    process = spawn_runtime(port, extra_env=env)
    client = RuntimeClient(f"http://127.0.0.1:{port}", secret=secret)
    try:
        await asyncio.wait_for(wait_healthy(client, process), timeout=120)
        yield client, process, port
    finally:
        await client.close()
        stop_runtime(process)
