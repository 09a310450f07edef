"""Start the SEAL runtime as a child process and wait until it is healthy.

Used by `stickerbot demo`/`chat` (a private runtime on a free loopback port) and by
`stickerbot run` (the supervised runtime)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import RuntimeJobError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_runtime(port: int, config_path: str | None = None, extra_env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "adapters.cli.commands", "runtime", "--host", "127.0.0.1", "--port", str(port)]
    if config_path:
        command += ["--config", str(config_path)]
    env = {**os.environ, **(extra_env or {})}
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)


async def wait_healthy(client: RuntimeClient, process: subprocess.Popen | None = None, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeJobError(f"the runtime process exited with code {process.returncode} while starting")
        try:
            return await client.health()
        except RuntimeJobError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


def stop_runtime(process: subprocess.Popen, timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
