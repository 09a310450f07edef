"""`stickerbot bench reliability --json PATH`: kills, restarts, fuzzing and a soak.

Six scenarios, each checked for what must hold, with figures:

- `runtime_kills`: the real runtime process (builtin model, few steps) is SIGKILLed while
  it adapts a character, `kills` times in a row, and restarted each time. Every user has
  their own character, so every job adapts. Must hold: all jobs done, each delivered once,
  every reference intact and every embedding stored.
- `bot_kills`: a bot process (`stickerbot run`'s Supervisor with a file-backed sink, in a
  child process) is SIGKILLed mid-job, `kills` times, and started again. Must hold: every
  job completes after the restart and its sticker is delivered exactly once; at the end a
  SIGTERM stops the bot cleanly.
- `fuzz`: hypothesis on the command parser and the image loader. Must hold: 0 crashes
  (anything but the friendly `UserError`).
- `soak`: mixed requests from many users (some heavy, some light) against the stub runtime,
  with injected runtime drops and a few poison requests, several workers on one SQLite file.
  Must hold: 0 lost, 0 duplicated; poison jobs end failed and their users are told once.
  Fairness: how evenly the wait (queued -> first sent to the runtime) is spread over users.
- `setref_loop_lag` (benchmarks/setref_load.py): the event loop's longest lag while a large
  /setref (16-bit PNG, float TIFF, RGB PNG, 40 MP JPEG) is decoded. Must hold: < 100 ms.
- `backup_under_writes` (benchmarks/durability.py): `stickerbot backup` of a 120 MB database
  while another connection writes every 20-50 ms. Must hold: it finishes, the copy is intact.

The scenario functions are also what tests/test_reliability_kills.py runs, with small sizes.
`python -m benchmarks.bench_reliability worker ...` is the child process of `bot_kills`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from bot.messages import JobView, ProgressEvent, StickerOut, UserRef
from bot.settings import Settings

# -- shared pieces -----------------------------------------------------------------------------


class RecordingSink:
    """In-process sink: counts every delivery per job id."""

    def __init__(self) -> None:
        self.deliveries: collections.Counter = collections.Counter()
        self.failures: dict[str, list[str]] = collections.defaultdict(list)
        self.delivered_at: dict[str, float] = {}

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        pass

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        assert stickers and all(s.job_id == job.job_id for s in stickers)
        self.deliveries[job.job_id] += 1
        self.delivered_at.setdefault(job.job_id, time.time())

    async def failed(self, job: JobView, message: str) -> None:
        self.failures[job.job_id].append(message)
        self.delivered_at.setdefault(job.job_id, time.time())

    def times_told(self, job_id: str) -> int:
        return self.deliveries[job_id] + len(self.failures.get(job_id, ()))


class FileSink:
    """Appends one JSON line per delivery to a file (fsync'd): what a user received, as seen
    from outside a process that may be SIGKILLed at any moment. The file name is the
    operator's; nothing from a user goes into any path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as log_file:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            os.fsync(log_file.fileno())

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        pass

    async def deliver(self, job: JobView, stickers: list[StickerOut]) -> None:
        self._write({"job_id": job.job_id, "kind": "sticker", "stickers": [s.sticker_id for s in stickers],
                     "pid": os.getpid(), "at": time.time()})

    async def failed(self, job: JobView, message: str) -> None:
        self._write({"job_id": job.job_id, "kind": "failed", "message": message, "pid": os.getpid(),
                     "at": time.time()})


class FileAdapter:
    """An adapter for the Supervisor with no platform behind it: console users, file sink."""

    platform = "console"

    def __init__(self, path: Path) -> None:
        self.sink = FileSink(path)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def read_deliveries(path: Path) -> collections.Counter:
    if not path.exists():
        return collections.Counter()
    return collections.Counter(json.loads(line)["job_id"] for line in path.read_text().splitlines() if line.strip())


def character_png(index: int, size: int = 96) -> bytes:
    """A distinct little character per index (so each user's reference adapts on its own)."""
    from PIL import Image, ImageDraw

    rng = random.Random(index)
    colour = tuple(rng.randrange(40, 230) for _ in range(3))
    image = Image.new("RGB", (size, size), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    pad = size // 6 + index % 5
    draw.ellipse((pad, pad, size - pad, size - pad), fill=colour, outline=(20, 20, 20), width=3)
    draw.rectangle((size // 2 - 4, size // 3, size // 2 + 4, size // 3 + 8 + index % 7), fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def bench_settings(database: str, runtime_url: str, *, adapt_steps: int = 3, generate_steps: int = 2,
                   **limits) -> Settings:
    base = Settings()
    values = {"requests_per_minute": 0, "daily_quota": 1_000_000, "queue_cap": 100_000, "user_queue_cap": 0,
              "setrefs_per_hour": 0, "job_lease_s": 10.0,
              "retry_base_s": 0.2, "retry_max_s": 2.0, **limits}
    return replace(
        base,
        general=replace(base.general, database=database, runtime_url=runtime_url, health_port=0),
        adaptation=replace(base.adaptation, steps=adapt_steps, batch_size=1),
        generation=replace(base.generation, steps=generate_steps),
        limits=replace(base.limits, **values),
    )


def _final_counts(db) -> dict:
    rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
    return {state: n for state, n in rows}


async def _wait_until(predicate, timeout_s: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


def _all_told(db) -> bool:
    return db.execute("SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed', 'cancelled') "
                      "OR (state IN ('done', 'failed') AND delivered_at IS NULL)").fetchone()[0] == 0


# -- scenario: SIGKILL the runtime during adaptation -------------------------------------------------
async def runtime_kills(workdir: Path, *, kills: int = 10, users: int | None = None, adapt_steps: int = 4,
                        generate_steps: int = 1, timeout_s: float = 1800) -> dict:
    from adapters.cli.runtime_child import free_port, spawn_runtime, stop_runtime, wait_healthy
    from bot.job_worker import JobWorker
    from bot.service import StickerService
    from seal_runtime.api.client import RuntimeClient
    from storage import embeddings, references
    from storage.database import open_database

    users = users or kills
    port = free_port()
    settings = bench_settings(str(workdir / "kills.sqlite"), f"http://127.0.0.1:{port}", adapt_steps=adapt_steps,
                              generate_steps=generate_steps)
    env = {"STICKERBOT_RUNTIME__DEVICE": "cpu", "STICKERBOT_GENERAL__LOG_LEVEL": "WARNING",
           "STICKERBOT_GENERAL__LOG_FORMAT": "text", "STICKERBOT_ADAPTATION__STEPS": str(adapt_steps),
           "STICKERBOT_ADAPTATION__BATCH_SIZE": "1", "STICKERBOT_GENERATION__STEPS": str(generate_steps)}
    db = open_database(settings.general.database)
    service = StickerService(db, settings)
    saved = {}
    for i in range(users):
        ref = service.set_reference(UserRef("console", f"user{i}", f"User {i}"), character_png(i))
        saved[ref.reference_id] = ref.sha256
    job_ids = [service.request_sticker(UserRef("console", f"user{i}"), "happy waving", {"n": i}, seed=i).job_id
               for i in range(users)]
    client = RuntimeClient(settings.general.runtime_url)
    sink = RecordingSink()
    worker = JobWorker(db, settings, client, sink, worker_id="bench-kills")
    stop = asyncio.Event()
    started = time.perf_counter()
    process = spawn_runtime(port, extra_env=env)
    restarts_s: list[float] = []
    killed_jobs: list[str] = []
    worker_task = None
    try:
        await wait_healthy(client, process)
        worker_task = asyncio.create_task(worker.run_forever(stop, idle_sleep=0.05))
        for _ in range(kills):
            def adapting():
                row = db.execute("SELECT id, progress FROM jobs WHERE state = 'adapting' AND progress IS NOT NULL "
                                 "AND json_extract(progress, '$.stage') = 'adapting' "
                                 "AND json_extract(progress, '$.step') >= 1").fetchone()
                return row
            if not await _wait_until(lambda: adapting() is not None or _all_told(db), timeout_s / 2):
                break
            row = adapting()
            if row is None:
                break  # every job finished before the next kill could land
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_jobs.append(row[0])
            restart = time.perf_counter()
            process = spawn_runtime(port, extra_env=env)
            await wait_healthy(client, process)
            restarts_s.append(time.perf_counter() - restart)
        finished = await _wait_until(lambda: _all_told(db), timeout_s)
    finally:
        stop.set()
        if worker_task is not None:
            await asyncio.wait_for(worker_task, 120)
        await client.close()
        stop_runtime(process)
    wall_s = time.perf_counter() - started
    states = _final_counts(db)
    attempts = [r[0] for r in db.execute("SELECT attempts FROM jobs").fetchall()]
    intact = 0
    for reference_id, sha in saved.items():
        ref = db.execute("SELECT user_id FROM reference_images WHERE id = ?", [reference_id]).fetchone()
        if ref is not None:
            stored = references.get_reference(db, ref[0], reference_id)
            intact += stored is not None and stored.sha256 == sha and bool(stored.image)
    model_row = db.execute("SELECT DISTINCT model_id, settings_hash FROM embeddings").fetchall()
    with_embedding = sum(any(embeddings.exists(db, sha, m, h) for m, h in model_row) for sha in saved.values())
    figures = {
        "kills": len(killed_jobs),
        "distinct_jobs_killed": len(set(killed_jobs)),
        "jobs": len(job_ids),
        "jobs_done": states.get("done", 0),
        "jobs_failed": states.get("failed", 0),
        "finished_in_time": finished,
        "delivered_once": sum(sink.deliveries[j] == 1 for j in job_ids),
        "delivered_twice_or_more": sum(sink.deliveries[j] > 1 for j in job_ids),
        "not_delivered": sum(sink.times_told(j) == 0 for j in job_ids),
        "references_intact": intact,
        "references_saved": len(saved),
        "references_with_embedding": with_embedding,
        "max_attempts_used": max(attempts) if attempts else 0,
        "runtime_restart_s_mean": round(statistics.mean(restarts_s), 2) if restarts_s else None,
        "wall_s": round(wall_s, 1),
        "adapt_steps": adapt_steps,
    }
    figures["ok"] = (figures["kills"] == kills and figures["jobs_done"] == len(job_ids)
                     and figures["delivered_once"] == len(job_ids) and intact == len(saved)
                     and with_embedding == len(saved))
    db.close()
    return figures


# -- scenario: SIGKILL the bot mid-job --------------------------------------------------------------
def worker_command(database: Path, runtime_url: str, deliveries: Path, *, lease_s: float = 10.0) -> list[str]:
    return [sys.executable, "-m", "benchmarks.bench_reliability", "worker", "--database", str(database),
            "--runtime-url", runtime_url, "--deliveries", str(deliveries), "--lease", str(lease_s)]


async def bot_kills(workdir: Path, *, kills: int = 3, jobs_n: int | None = None, step_delay_s: float = 0.05,
                    adapt_steps: int = 20, timeout_s: float = 180) -> dict:
    from benchmarks.fakes.reliability_stub import CrashingStub
    from benchmarks.fakes.stub_runtime import running_stub_runtime
    from bot.service import StickerService
    from storage.database import open_database

    jobs_n = jobs_n or kills
    database = workdir / "botkill.sqlite"
    deliveries = workdir / "deliveries.jsonl"
    stub = CrashingStub(adapt_steps=adapt_steps, step_delay_s=step_delay_s)
    kill_to_done_s: list[float] = []
    exit_code = None
    async with running_stub_runtime(stub):
        settings = bench_settings(str(database), stub.url)
        db = open_database(database)
        service = StickerService(db, settings)
        for i in range(jobs_n):
            service.set_reference(UserRef("console", f"user{i}"), character_png(i))
        job_ids = [service.request_sticker(UserRef("console", f"user{i}"), "sad sitting", {"n": i}, seed=i).job_id
                   for i in range(jobs_n)]
        command = worker_command(database, stub.url, deliveries)
        env = {**os.environ, "STICKERBOT_GENERAL__LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        killed: list[str] = []
        for _ in range(kills):
            child = await asyncio.create_subprocess_exec(*command, env=env, stdin=asyncio.subprocess.DEVNULL)

            def running_job():
                # A job this child is running (a killed child's job still looks running: skip those).
                skip = killed or [""]
                return db.execute(f"SELECT id FROM jobs WHERE state IN ('adapting', 'generating') AND attempts = 1 "
                                  f"AND json_extract(progress, '$.step') >= 2 AND id NOT IN "
                                  f"({','.join('?' * len(skip))})", skip).fetchone()
            await _wait_until(lambda: running_job() is not None, timeout_s / 2, interval=0.02)
            row = running_job()
            child.kill()
            await child.wait()
            if row is None:
                break
            killed.append(row[0])
        ready = workdir / "ready"
        child = await asyncio.create_subprocess_exec(*command, "--ready-file", str(ready), env=env,
                                                     stdin=asyncio.subprocess.DEVNULL)
        restart = time.perf_counter()
        for job_id in killed:
            await _wait_until(lambda: (db.execute("SELECT delivered_at FROM jobs WHERE id = ?", [job_id]).fetchone()
                                       or [None])[0] is not None, timeout_s)
            kill_to_done_s.append(time.perf_counter() - restart)
        finished = await _wait_until(lambda: _all_told(db), timeout_s)
        await _wait_until(ready.exists, timeout_s)  # its signal handlers are in place
        child.send_signal(signal.SIGTERM)
        try:
            exit_code = await asyncio.wait_for(child.wait(), 60)
        except TimeoutError:
            child.kill()
            exit_code = await child.wait()
        wall_s = time.perf_counter() - started
        states = _final_counts(db)
        db.close()
    received = read_deliveries(deliveries)
    figures = {
        "kills": len(killed),
        "distinct_jobs_killed": len(set(killed)),
        "jobs": jobs_n,
        "jobs_done": states.get("done", 0),
        "finished_in_time": finished,
        "delivered_once": sum(received[j] == 1 for j in job_ids),
        "delivered_twice_or_more": sum(received[j] > 1 for j in job_ids),
        "not_delivered": sum(received[j] == 0 for j in job_ids),
        "killed_job_done_after_restart_s_max": round(max(kill_to_done_s), 2) if kill_to_done_s else None,
        "sigterm_exit_code": exit_code,
        "wall_s": round(wall_s, 1),
    }
    figures["ok"] = (figures["kills"] == figures["distinct_jobs_killed"] == kills and figures["jobs_done"] == jobs_n
                     and figures["delivered_once"] == jobs_n and exit_code == 0)
    return figures


def worker_main(argv: list[str]) -> int:
    """The bot process of `bot_kills`: the real Supervisor, no runtime child, a file sink."""
    from adapters.cli.supervisor import Supervisor, install_signal_handlers
    from bot.log_format import configure_logging

    parser = argparse.ArgumentParser(prog="bench_reliability worker")
    parser.add_argument("--database", required=True)
    parser.add_argument("--runtime-url", required=True)
    parser.add_argument("--deliveries", required=True)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--ready-file", help="created once the bot runs (and handles SIGTERM)")
    args = parser.parse_args(argv)
    settings = bench_settings(args.database, args.runtime_url, job_lease_s=args.lease)
    configure_logging(os.environ.get("STICKERBOT_GENERAL__LOG_LEVEL", "WARNING"), "text")

    async def main() -> int:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        supervisor = Supervisor(settings, run_runtime=False, adapters=[FileAdapter(Path(args.deliveries))],
                                worker_id="bench-bot", grace_s=args.grace, health_port=0, idle_sleep=0.05)

        async def announce() -> None:
            await supervisor.started.wait()
            if args.ready_file:
                Path(args.ready_file).touch()

        announcing = asyncio.create_task(announce())
        try:
            return await supervisor.run(stop)
        finally:
            announcing.cancel()

    return asyncio.run(main())


# -- scenario: fuzzing ---------------------------------------------------------------------------
def fuzz_target(strategy, target, examples: int, seed: int = 0) -> dict:
    """Run `target` on `examples` hypothesis inputs; a crash is any exception but a friendly
    refusal (the bot's UserError, the schema's PromptError)."""
    from hypothesis import HealthCheck, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings
    from hypothesis.errors import HypothesisException

    from bot.errors import UserError
    from bot.schema.prompt_parser import PromptError

    count = collections.Counter()

    @hypothesis_seed(seed)
    @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(strategy)
    def one(value):
        count["inputs"] += 1
        try:
            target(value)
            count["accepted"] += 1
        except (UserError, PromptError):
            count["refused_with_message"] += 1

    started = time.perf_counter()
    crash = None
    try:
        one()
    except HypothesisException:
        raise  # a broken harness is not a finding
    except Exception as exc:  # hypothesis re-raises the first crash it found (shrunk)
        crash = f"{type(exc).__name__}: {str(exc)[:300]}"
    return {"inputs": count["inputs"], "accepted": count["accepted"],
            "refused_with_message": count["refused_with_message"], "crashes": int(crash is not None),
            "first_crash": crash, "seconds": round(time.perf_counter() - started, 1)}


def fuzz(parser_examples: int = 5000, image_examples: int = 2000, seed: int = 0) -> dict:
    from benchmarks.fakes.fuzz_inputs import image_uploads, prompts
    from bot.image_input import load_reference_image
    from bot.schema.prompt_parser import parse_prompt

    with warnings.catch_warnings():  # Pillow's notes on broken TIFF tags and APNG chunks: expected here
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")
        results = {
            "parser": fuzz_target(prompts(), lambda text: parse_prompt(text, max_chars=200), parser_examples, seed),
            "image_loader": fuzz_target(image_uploads(),
                                        lambda data: load_reference_image(data, max_pixels=4_000_000),
                                        image_examples, seed),
        }
    results["ok"] = all(r["crashes"] == 0 for r in results.values())
    return results


# -- scenario: soak ---------------------------------------------------------------------------------
PROMPTS = ("happy waving beach", "sad sitting rain", "love thumbs up close up", "angry jumping city",
           "sleepy lying night sky", "surprised running park", "happy dancing", "cool standing flat")


async def soak(workdir: Path, *, requests: int = 1000, users: int = 50, workers: int = 4, seed: int = 1,
               drop_rate: float = 0.03, poison_rate: float = 0.01, heavy_share: float = 0.5,
               arrival_s: float = 2.0, step_delay_s: float = 0.01, timeout_s: float = 600) -> dict:
    """Mixed requests: /mysticker (new words, poison words), /again, /status, a new /setref
    now and then; 10 % of the users send `heavy_share` of the requests."""
    from benchmarks.fakes.reliability_stub import CrashingStub
    from benchmarks.fakes.stub_runtime import running_stub_runtime
    from bot.errors import UserError
    from bot.job_worker import JobWorker
    from bot.service import StickerService
    from seal_runtime.api.client import RuntimeClient
    from storage.database import open_database

    rng = random.Random(seed)
    database = workdir / "soak.sqlite"
    drops = random.Random(seed + 1)
    first_seen: dict[str, float] = {}

    def drop(job) -> bool:
        first_seen.setdefault(job.job_id, time.time())
        if "poison" in job.prompts[0]:
            return True
        return drops.random() < drop_rate

    # A few ms of "GPU" per step and arrivals faster than that: a backlog builds, and the
    # order in which it drains is what fairness is about.
    stub = CrashingStub(adapt_steps=2, generate_steps=2, step_delay_s=step_delay_s, drop=drop)
    async with running_stub_runtime(stub):
        settings = bench_settings(str(database), stub.url)
        db = open_database(database)
        service = StickerService(db, settings)
        people = [UserRef("telegram", str(1000 + i), f"User {i}") for i in range(users)]
        heavy = people[: max(1, users // 10)]
        for i, person in enumerate(people):
            service.set_reference(person, character_png(i))
        sink = RecordingSink()
        stops = asyncio.Event()
        worker_dbs = [open_database(database) for _ in range(workers)]
        clients = [RuntimeClient(stub.url) for _ in range(workers)]
        pool = [JobWorker(wdb, settings, clients[n], sink, worker_id=f"soak-{n}") for n, wdb in enumerate(worker_dbs)]
        tasks = [asyncio.create_task(w.run_forever(stops, idle_sleep=0.01)) for w in pool]
        accepted: dict[str, UserRef] = {}
        poison: set[str] = set()
        kinds = collections.Counter()
        refused = collections.Counter()
        started = time.perf_counter()
        for n in range(requests):
            person = rng.choice(heavy) if rng.random() < heavy_share else rng.choice(people)
            roll = rng.random()
            try:
                if roll < 0.70:
                    is_poison = rng.random() < poison_rate
                    text = "poison " + rng.choice(PROMPTS) if is_poison else rng.choice(PROMPTS)
                    queued = service.request_sticker(person, text, {"n": n})
                    accepted[queued.job_id] = person
                    if is_poison:
                        poison.add(queued.job_id)
                    kinds["mysticker"] += 1
                elif roll < 0.85:
                    queued = service.again(person, {"n": n})
                    accepted[queued.job_id] = person
                    if "poison" in queued.description:
                        poison.add(queued.job_id)
                    kinds["again"] += 1
                elif roll < 0.97:
                    service.status(person)
                    kinds["status"] += 1
                else:
                    service.set_reference(person, character_png(rng.randrange(10_000)))
                    kinds["setref"] += 1
            except UserError as exc:
                refused[exc.code] += 1
            if n % 20 == 19:
                await asyncio.sleep(arrival_s * 20 / requests)
        queued_s = time.perf_counter() - started
        finished = await _wait_until(lambda: _all_told(db), timeout_s, interval=0.1)
        stops.set()
        await asyncio.gather(*tasks)
        wall_s = time.perf_counter() - started
        for client in clients:
            await client.close()
        rows = {r["id"]: r for r in db.query("SELECT id, user_id, state, created_at, attempts FROM jobs")}
        for wdb in worker_dbs:
            wdb.close()
        db.close()
    lost = [j for j in accepted if sink.times_told(j) == 0]
    duplicated = [j for j in accepted if sink.times_told(j) > 1]
    poison_failed = sum(rows[j]["state"] == "failed" and len(sink.failures.get(j, ())) == 1 for j in poison)
    non_poison_failed = sum(rows[j]["state"] == "failed" for j in accepted if j not in poison)
    waits_by_user: dict[str, list[float]] = collections.defaultdict(list)
    for job_id, person in accepted.items():
        if job_id in first_seen:
            waits_by_user[person.platform_user_id].append(first_seen[job_id] - rows[job_id]["created_at"])
    all_waits = [w for ws in waits_by_user.values() for w in ws]
    means = {u: statistics.mean(ws) for u, ws in waits_by_user.items()}
    firsts = {u: ws[0] for u, ws in waits_by_user.items()}
    heavy_ids = {p.platform_user_id for p in heavy}
    light_means = [m for u, m in means.items() if u not in heavy_ids]
    heavy_means = [m for u, m in means.items() if u in heavy_ids]
    figures = {
        "requests": requests,
        "users": users,
        "heavy_users": len(heavy),
        "workers": workers,
        "request_kinds": dict(kinds),
        "refused": dict(refused),
        "jobs_accepted": len(accepted),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "finished_in_time": finished,
        "runtime_drops_injected": stub.dropped,
        "poison_jobs": len(poison),
        "poison_failed_and_told_once": poison_failed,
        "other_jobs_failed": non_poison_failed,
        "jobs_per_s": round(len(accepted) / wall_s, 1),
        "queued_in_s": round(queued_s, 2),
        "wall_s": round(wall_s, 1),
        "wait_s": _spread(all_waits),
        "fairness": {
            "per_user_mean_wait_s": _spread(list(means.values())),
            "per_user_first_wait_s": _spread(list(firsts.values())),
            "light_users_mean_wait_s": round(statistics.mean(light_means), 3) if light_means else None,
            "heavy_users_mean_wait_s": round(statistics.mean(heavy_means), 3) if heavy_means else None,
            "jain_index_of_user_mean_waits": _jain(list(means.values())),
        },
    }
    figures["ok"] = (not lost and not duplicated and finished and poison_failed == len(poison))
    return figures


def _spread(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {"n": len(values), "min": round(ordered[0], 3), "p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            "max": round(ordered[-1], 3), "stdev": round(statistics.pstdev(ordered), 3)}


def _jain(values: list[float]) -> float | None:
    """Jain's fairness index: 1.0 when every user waited the same on average, 1/n at worst."""
    if not values or not any(values):
        return None
    return round(sum(values) ** 2 / (len(values) * sum(v * v for v in values)), 3)


# -- the benchmark -----------------------------------------------------------------------------------
def run(args) -> int:
    import logging

    quick = bool(getattr(args, "quick", False))
    logging.getLogger().setLevel(logging.ERROR)  # injected failures log warnings by design
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the stub's side of a cut connection
    figures: dict = {"quick": quick, "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        from benchmarks.durability import backup_under_writes
        from benchmarks.setref_load import setref_loop_lag

        scenarios = (
            ("fuzz", lambda: fuzz(*((500, 300) if quick else (5000, 2000)))),
            ("setref_loop_lag", lambda: asyncio.run(setref_loop_lag(tmp_path / "setref", runs=1 if quick else 3))),
            ("backup_under_writes", lambda: backup_under_writes(tmp_path / "backup",
                                                                **({"database_mb": 24} if quick else {}))),
            ("soak", lambda: asyncio.run(soak(tmp_path / "soak", **({"requests": 100, "users": 10}
                                                                    if quick else {})))),
            ("bot_kills", lambda: asyncio.run(bot_kills(tmp_path / "bot", kills=1 if quick else 3))),
            ("runtime_kills", lambda: asyncio.run(runtime_kills(tmp_path / "runtime",
                                                                **({"kills": 1, "adapt_steps": 2} if quick else {})))),
        )
        for folder in ("soak", "bot", "runtime", "setref", "backup"):
            (tmp_path / folder).mkdir()
        for name, scenario in scenarios:
            started = time.perf_counter()
            figures[name] = scenario()
            print(f"{name}: ok={figures[name].get('ok')} ({time.perf_counter() - started:.1f} s)", flush=True)
    figures["ok"] = all(figures[name].get("ok") for name, _ in scenarios)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(text + "\n")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2:]))
    print("usage: python -m benchmarks.bench_reliability worker ... (or: stickerbot bench reliability)")
    sys.exit(2)
