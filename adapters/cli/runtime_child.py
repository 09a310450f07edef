"""Start the SEAL runtime as a child process, wait until it is healthy, stop it: the one copy.

Used by `stickerbot demo`/`chat` (a private runtime on a free loopback port) and by
`stickerbot run` (the supervised runtime)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import RuntimeJobError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runtime_command(port: int, config_path: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "adapters.cli.commands", "runtime", "--host", "127.0.0.1", "--port", str(port)]
    if config_path:
        command += ["--config", str(config_path)]
    return command


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the runtime gets SIGTERM if its parent is killed, so no orphan holds the GPU."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# The runtime needs no bot token: its environment carries none.
BOT_TOKEN_VARIABLES = ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "STICKERBOT_TELEGRAM__TOKEN",
                       "STICKERBOT_DISCORD__TOKEN")


def spawn_child(command: list[str], extra_env: dict | None = None, **popen) -> subprocess.Popen:
    """A runtime child: no bot tokens in its environment, no stdin, and (Linux) it dies with us."""
    env = {k: v for k, v in os.environ.items() if k not in BOT_TOKEN_VARIABLES}
    env.update(extra_env or {})
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=preexec, **popen)


def spawn_runtime(port: int, config_path: str | None = None, extra_env: dict | None = None,
                  log_path: Path | None = None) -> subprocess.Popen:
    """The runtime on 127.0.0.1:`port`; with `log_path`, its output goes to that file
    instead of this terminal."""
    command = runtime_command(port, config_path)
    if log_path is None:
        return spawn_child(command, extra_env)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:  # the child keeps its own copy of the descriptor
        return spawn_child(command, extra_env, stdout=log_file, stderr=log_file)


def last_error_line(log_path: Path) -> str | None:
    """The last line of a Python traceback in the log (`SomeError: what happened`)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if line and not line.startswith((" ", "Traceback", "[")) and ":" in line]
    return errors[-1][:300] if errors else None


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
