"""GPU workers as real processes (`stickerbot gpu-worker`), for the scale-out tests and bench.

    fleet = GpuFleet(redis_url, log_dir)
    fleet.start("gpu0", runtime_url)      # a process, registered in Redis when `wait_registered`
    fleet.kill("gpu0")                    # SIGKILL
    fleet.stop_all()                      # SIGTERM (they finish or hand back their jobs)

`stub_runtimes(count)` runs stub runtimes in their own process, so a benchmark measuring
the bot's CPU does not count theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from seal_runtime.api import redis_jobs


def worker_command(
    redis_url: str,
    runtime_url: str,
    worker_id: str,
    *,
    grace_s: float = 5.0,
    max_tries: int | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "adapters.cli.commands",
        "gpu-worker",
        "--redis",
        redis_url,
        "--runtime",
        runtime_url,
        "--id",
        worker_id,
        "--grace",
        str(grace_s),
        *extra,
    ]
    if max_tries is not None:
        command += ["--max-tries", str(max_tries)]
    return command


class GpuFleet:
    def __init__(
        self,
        redis_url: str,
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        max_tries: int | None = None,
        job_lease_s: float | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "STICKERBOT_GENERAL__LOG_LEVEL": "WARNING",
            "STICKERBOT_GENERAL__LOG_FORMAT": "text",
            **(env or {}),
        }
        self.max_tries = max_tries
        self.job_lease_s = job_lease_s
        self.processes: dict[str, subprocess.Popen] = {}
        self.kills = 0

    def start(self, worker_id: str, runtime_url: str, *extra: str) -> subprocess.Popen:
        with open(self.log_dir / f"{worker_id}.log", "ab") as log:
            lease = ("--job-lease", str(self.job_lease_s)) if self.job_lease_s else ()
            process = subprocess.Popen(
                worker_command(
                    self.redis_url, runtime_url, worker_id, max_tries=self.max_tries, extra=(*lease, *extra)
                ),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[worker_id] = process
        return process

    def kill(self, worker_id: str) -> None:
        process = self.processes.pop(worker_id)
        process.kill()
        process.wait()
        self.kills += 1

    def stop_all(self, timeout_s: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def log_of(self, worker_id: str) -> str:
        path = self.log_dir / f"{worker_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def wait_registered(self, redis, worker_ids, timeout_s: float = 60.0) -> None:
        """Until every named worker has registered in Redis (its runtime answered)."""
        wanted = set(worker_ids)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            live = {w.worker_id for w in await redis_jobs.live_workers(redis)}
            if wanted <= live:
                return
            for worker_id in wanted:
                process = self.processes.get(worker_id)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(
                        f"gpu-worker {worker_id} exited ({process.returncode}):\n{self.log_of(worker_id)[-3000:]}"
                    )
            await asyncio.sleep(0.1)
        raise TimeoutError(f"gpu-workers {sorted(wanted)} did not register within {timeout_s} s")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


class StubRuntimes:
    """`count` stub runtimes in one child process (`benchmarks.fakes.stub_runtime`)."""

    def __init__(self, count: int, *, step_delay_s: float = 0.1, generate_steps: int = 10, adapt_steps: int = 0):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.fakes.stub_runtime",
                "--count",
                str(count),
                "--step-delay",
                str(step_delay_s),
                "--generate-steps",
                str(generate_steps),
                "--adapt-steps",
                str(adapt_steps),
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"stub runtimes did not start ({self.process.wait()})")
        self.urls: list[str] = json.loads(line)["urls"]

    def cpu_s(self) -> float:
        return _process_cpu_s(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _process_cpu_s(pid: int) -> float:
    """user + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def running_gpu_worker(redis_url: str, runtime_url: str, *, timeout_s: float = 30.0, **options):
    """A GpuWorker in this event loop (for tests that need no process boundary), registered."""
    from seal_runtime.gpu_worker import GpuWorker

    worker = GpuWorker(redis_url, runtime_url, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    registered = asyncio.create_task(worker.registered.wait())
    await asyncio.wait({task, registered}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        registered.cancel()
        task.result()
        raise RuntimeError("the gpu worker stopped before it registered")
    if not worker.registered.is_set():
        registered.cancel()
        stop.set()
        await task
        raise TimeoutError(f"the gpu worker did not register within {timeout_s} s")
    try:
        yield worker
    finally:
        stop.set()
        await task
