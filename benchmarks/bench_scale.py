"""`stickerbot bench scale --json PATH`: throughput of 1, 2, 4 and 8 GPU workers fed by one bot.

Everything is real but the GPUs: a real `redis-server` (AOF on), real `stickerbot
gpu-worker` processes, the bot's JobWorkerPool on a RedisRuntimeClient and a SQLite file,
and stub runtimes (in their own process) that take `seconds_per_sticker` per sticker.

For each worker count N, two phases:
- **burst**: N × `jobs_per_worker` jobs from 2N users, all queued at once. Figures:
  stickers per second, and its share of N × the single worker's rate (`efficiency`,
  target ≥ 0.9), the bot process's CPU seconds per job (claim, enqueue, follow the
  stream, store, deliver; the stubs and workers are other processes).
- **paced**: jobs arrive evenly at 80 % of N workers' capacity for `paced_s` seconds, one
  job per user at a time. Figures: p50/p99 queue wait (created -> its first progress
  event back from a GPU: the SQLite queue, arq's queue and the worker's pickup).

`ScaleBed` (a bot against Redis) is also what tests/test_scale_redis.py drives.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.bench_reliability import RecordingSink, bench_settings, character_png
from bot.messages import JobView, ProgressEvent, UserRef


class TimingSink(RecordingSink):
    """Counts deliveries, and notes when each job's first progress event came back."""

    def __init__(self) -> None:
        super().__init__()
        self.first_progress: dict[str, float] = {}
        self.stages: dict[str, set[str]] = {}

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        self.first_progress.setdefault(job.job_id, time.time())
        self.stages.setdefault(job.job_id, set()).add(update.stage)


class ScaleBed:
    """A bot scaled out through Redis: SQLite, StickerService, a JobWorkerPool sized by the
    live GPU workers, a TimingSink. GPU workers and runtimes are the caller's."""

    def __init__(
        self,
        workdir: Path,
        redis_url: str,
        *,
        ca_file: str | None = None,
        check_interval_s: float = 0.5,
        no_worker_grace_s: float = 30.0,
        gpu_jobs: int = 0,
        adapt_steps: int = 1,
        generate_steps: int = 10,
        **limits,
    ) -> None:
        from bot.job_worker import JobWorker
        from bot.service import StickerService
        from bot.worker_pool import JobWorkerPool, worker_id_of
        from seal_runtime.api.redis_client import RedisRuntimeClient
        from storage.database import open_database

        workdir.mkdir(parents=True, exist_ok=True)
        base = bench_settings(
            str(workdir / "bot.sqlite"),
            "http://127.0.0.1:9",
            adapt_steps=adapt_steps,
            generate_steps=generate_steps,
            **limits,
        )
        self.settings = settings = replace(
            base,
            general=replace(base.general, queue="redis", redis_url=redis_url, redis_ca_file=ca_file, gpu_jobs=gpu_jobs),
        )
        self.db = open_database(settings.general.database)
        self.service = StickerService(self.db, settings)
        self.sink = TimingSink()
        self.client = RedisRuntimeClient(
            redis_url, ca_file=ca_file, job_timeout_s=settings.limits.job_timeout_s, no_worker_grace_s=no_worker_grace_s
        )

        def make_worker(index: int) -> JobWorker:
            own = self.db if index == 0 else open_database(settings.general.database)
            return JobWorker(own, settings, self.client, self.sink, worker_id=worker_id_of("bot", index))

        def release(worker: JobWorker) -> None:
            if worker.db is not self.db:
                worker.db.close()

        capacity = None if gpu_jobs else self.client.capacity
        self.pool = JobWorkerPool(
            make_worker, capacity=capacity, size=gpu_jobs or 1, check_interval_s=check_interval_s, release=release
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._users: set[int] = set()

    def user(self, index: int) -> UserRef:
        return UserRef("console", f"user{index}", f"User {index}")

    def ask(self, index: int, text: str = "happy waving beach") -> str:
        user = self.user(index)
        if index not in self._users:
            self.service.set_reference(user, character_png(index))
            self._users.add(index)
        return self.service.request_sticker(user, text, {"chat": user.platform_user_id}, seed=1).job_id

    def start(self) -> None:
        self._task = asyncio.create_task(self.pool.run(self._stop, idle_sleep=0.02))

    async def stop(self, grace_s: float = 30.0) -> None:
        """Stop the job workers (each finishes its job in hand within `grace_s`, or is cancelled)."""
        self._stop.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self.client.close()
        self.db.close()

    def unfinished(self) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed', 'cancelled') "
            "OR (state IN ('done', 'failed') AND delivered_at IS NULL)"
        ).fetchone()[0]

    async def wait_all_told(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.unfinished() == 0:
                return True
            if self._task is not None and self._task.done():
                self._task.result()  # the pool died: show why
            await asyncio.sleep(0.05)
        return self.unfinished() == 0

    def outcome(self) -> dict:
        states = dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        ids = [r[0] for r in self.db.execute("SELECT id FROM jobs").fetchall()]
        told = [self.sink.times_told(job_id) for job_id in ids]
        return {
            "jobs": len(ids),
            "done": states.get("done", 0),
            "failed": states.get("failed", 0),
            "delivered_once": sum(1 for n in told if n == 1),
            "never_delivered": sum(1 for n in told if n == 0),
            "delivered_twice_or_more": sum(1 for n in told if n > 1),
        }

    def job_times(self) -> list[tuple[str, float, float | None]]:
        """(job id, created_at, first progress back) of every job."""
        return [
            (job_id, created, self.sink.first_progress.get(job_id))
            for job_id, created in self.db.execute("SELECT id, created_at FROM jobs").fetchall()
        ]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def measure(
    workers: int,
    redis,
    workdir: Path,
    *,
    seconds_per_sticker: float = 1.0,
    jobs_per_worker: int = 8,
    paced_s: float = 8.0,
) -> dict:
    from benchmarks.gpu_fleet import GpuFleet, StubRuntimes

    await _flush(redis.url)
    steps = 10
    with (
        StubRuntimes(workers, step_delay_s=seconds_per_sticker / steps, generate_steps=steps) as stubs,
        GpuFleet(redis.url, workdir / "logs") as fleet,
    ):
        ids = [f"gpu{i}" for i in range(workers)]
        for worker_id, url in zip(ids, stubs.urls):
            fleet.start(worker_id, url)
        bed = ScaleBed(workdir / "burst", redis.url)
        await fleet.wait_registered(await bed.client.connection(), ids)
        # -- burst ------------------------------------------------------------------------------
        users = 2 * workers
        n_jobs = workers * jobs_per_worker
        for k in range(n_jobs):
            bed.ask(k % users)
        cpu0, t0 = time.process_time(), time.monotonic()
        bed.start()
        finished = await bed.wait_all_told(timeout_s=60 + 4 * n_jobs * seconds_per_sticker / workers)
        elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
        burst = {
            "jobs": n_jobs,
            "users": users,
            "finished": finished,
            "seconds": round(elapsed, 3),
            "stickers_per_s": round(n_jobs / elapsed, 3),
            "bot_cpu_ms_per_job": round(1000 * cpu / n_jobs, 2),
            "bot_cpu_share_of_a_core": round(cpu / elapsed, 3),
            **bed.outcome(),
        }
        # -- paced --------------------------------------------------------------------------------
        rate = 0.8 * workers / seconds_per_sticker
        n_paced = max(4, int(rate * paced_s))
        created_from = time.time()
        for k in range(n_paced):
            bed.ask(1000 + k)  # a new user each time: one job per user, as most users are
            await asyncio.sleep(1.0 / rate)
        await bed.wait_all_told(timeout_s=60 + 4 * n_paced * seconds_per_sticker / workers)
        waits = [first - created for _, created, first in bed.job_times() if created >= created_from and first]
        paced = {
            "jobs": n_paced,
            "arrivals_per_s": round(rate, 3),
            "load": 0.8,
            "queue_wait_p50_s": _round(statistics.median(waits) if waits else None),
            "queue_wait_p99_s": _round(_percentile(waits, 0.99)),
            "pickup_p50_s": _round(statistics.median(bed.client.pickup_s) if bed.client.pickup_s else None),
        }
        outcome = bed.outcome()
        await bed.stop()
    return {
        "workers": workers,
        "burst": burst,
        "paced": paced,
        "all_delivered_once": outcome["delivered_once"] == outcome["jobs"] and finished,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def _flush(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


def run(args) -> int:
    import logging

    from benchmarks.commands import report
    from benchmarks.redis_server import RedisServer, RedisUnavailable

    quick = bool(getattr(args, "quick", False))
    logging.getLogger().setLevel(logging.ERROR)
    counts = (1, 2) if quick else (1, 2, 4, 8)
    seconds = 0.3 if quick else 1.0
    figures: dict = {
        "quick": quick,
        "seconds_per_sticker": seconds,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server = RedisServer(Path(tmp) / "redis", appendfsync="everysec").start()
        except RedisUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            for n in counts:
                started = time.perf_counter()
                result = asyncio.run(
                    measure(
                        n,
                        server,
                        Path(tmp) / f"n{n}",
                        seconds_per_sticker=seconds,
                        jobs_per_worker=3 if quick else 8,
                        paced_s=2.0 if quick else 8.0,
                    )
                )
                figures["runs"].append(result)
                print(
                    f"{n} workers: {result['burst']['stickers_per_s']} stickers/s, queue wait p50 "
                    f"{result['paced']['queue_wait_p50_s']} s ({time.perf_counter() - started:.1f} s)",
                    flush=True,
                )
        finally:
            server.stop()
    single = figures["runs"][0]["burst"]["stickers_per_s"]
    for result in figures["runs"]:
        result["efficiency"] = round(result["burst"]["stickers_per_s"] / (result["workers"] * single), 3)
    figures["ok"] = all(r["all_delivered_once"] for r in figures["runs"]) and all(
        r["efficiency"] >= 0.9 for r in figures["runs"]
    )
    report(figures, args.json_path)
    return 0 if figures["ok"] else 1
