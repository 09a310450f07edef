"""/cancel in the console and in the service: the newest request or all of them, a pack as one
request, the quota given back, nothing delivered afterwards; and a job stopped mid-adaptation
on the real runtime, whose GPU thread is free for the next job at once. (Telegram's and
Discord's /cancel and Cancel buttons: tests/test_telegram_cancel.py, tests/test_discord_cancel.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, replace

import pytest

from adapters.console import ConsoleSession, ConsoleSink
from benchmarks.bench_reliability import bench_settings, character_png
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.job_worker import JobWorker
from bot.messages import UserRef
from bot.service import StickerService
from seal_runtime.api.client import RuntimeClient
from storage import jobs, usage, users
from storage.database import open_database
from tests.runtime_helpers import running_runtime

ME = UserRef("console", "me", "Me")


def count(db, sql: str) -> int:
    return db.execute(sql).fetchone()[0]


@dataclass
class Console:
    db: object
    stub: object
    service: StickerService
    worker: JobWorker
    sink: ConsoleSink
    session: ConsoleSession
    lines: list[str]


@contextlib.asynccontextmanager
async def console(tmp_path, **limits):
    """The console with its worker on the stub runtime, the user's character saved."""
    async with running_stub_runtime() as stub:
        settings = bench_settings(str(tmp_path / "bot.sqlite"), stub.url, **limits)
        db = open_database(settings.general.database)
        client = RuntimeClient(stub.url)
        lines: list[str] = []
        sink = ConsoleSink(tmp_path / "out", print_fn=lines.append)
        service = StickerService(db, settings)
        session = ConsoleSession(service, ME, tmp_path / "out", sink=sink)
        reference = tmp_path / "me.png"
        reference.write_bytes(character_png(0))
        session.handle(f"/setref {reference}")
        try:
            yield Console(db, stub, service, JobWorker(db, settings, client, sink, worker_id="console"), sink,
                          session, lines)
        finally:
            await client.close()
            db.close()


async def test_cancel_takes_back_the_newest_request_then_all_and_refunds_the_quota(tmp_path):
    async with console(tmp_path, daily_quota=10) as bed:
        db, session = bed.db, bed.session
        session.handle("/mysticker happy")
        session.handle("/mysticker sad sitting")
        session.handle("/makepack 3")
        user_id = users.find_user(db, "console", "me").id
        assert usage.quota_used(db, user_id) == 5

        assert session.handle("/cancel") == "Cancelled your pack: 3 stickers not made yet are back in your daily quota."
        assert usage.quota_used(db, user_id) == 2 and bed.lines[-1] == "  ✗ Cancelled."
        assert session.handle("/cancel all") == "Cancelled “sad, sitting”.\nCancelled “happy, standing”."
        assert usage.quota_used(db, user_id) == 0
        assert count(db, "SELECT COUNT(*) FROM jobs WHERE state = 'cancelled'") == 5
        assert session.handle("/cancel") == "Nothing to cancel: you have no sticker in the queue."
        assert not await bed.worker.run_once()
        assert bed.stub.jobs == [] and bed.sink.delivered == {} and bed.sink.failures == {}


async def test_a_pack_cancelled_half_way_is_never_handed_out(tmp_path):
    async with console(tmp_path, daily_quota=10) as bed:
        bed.session.handle("/makepack 3")
        assert await bed.worker.run_once()  # one of the three is made
        assert bed.session.handle("/cancel") == ("Cancelled your pack: 2 stickers not made yet are back in your "
                                                 "daily quota.")
        assert usage.quota_used(bed.db, users.find_user(bed.db, "console", "me").id) == 1  # the one made counts
        while await bed.worker.run_once():
            pass
        assert len(bed.stub.jobs) == 1 and bed.sink.delivered == {}
        assert count(bed.db, "SELECT COUNT(*) FROM pack_orders WHERE delivered_at IS NOT NULL") == 1


async def test_a_job_cancelled_while_its_result_is_stored_keeps_nothing(tmp_path):
    """/cancel wins the race against a result already on its way: no sticker stays."""
    async with console(tmp_path) as bed:
        bed.session.handle("/mysticker happy")
        store = bed.worker._store_result

        def cancel_then_store(job, result):  # the user's /cancel lands just before the finish
            bed.service.cancel(ME)
            return store(job, result)

        bed.worker._store_result = cancel_then_store
        assert await bed.worker.run_once()
        assert count(bed.db, "SELECT COUNT(*) FROM stickers") == 0 and bed.sink.delivered == {}
        assert bed.worker.counters["cancelled"] == 1


@pytest.mark.slow
async def test_cancel_stops_a_job_mid_adaptation_on_the_real_runtime(tmp_path):
    """The builtin model, 400 adaptation steps (a minute or more here): /cancel after the second
    step. The runtime stops at its next step and its GPU thread is free: the worker returns at
    once, /healthz shows no job running, nothing is stored or delivered, the quota comes back,
    and the next job (2 steps) is done straight away."""
    async with running_runtime() as (client, _process, port):
        url = f"http://127.0.0.1:{port}"
        settings = bench_settings(str(tmp_path / "bot.sqlite"), url, adapt_steps=400, generate_steps=2,
                                  daily_quota=10, job_lease_s=10.0)
        db = open_database(settings.general.database)
        sink = ConsoleSink(tmp_path / "out", print_fn=lambda line: None)
        worker = JobWorker(db, settings, client, sink, worker_id="console")
        session = ConsoleSession(StickerService(db, settings), ME, tmp_path / "out", sink=sink)
        try:
            reference = tmp_path / "me.png"
            reference.write_bytes(character_png(0))
            session.handle(f"/setref {reference}")
            session.handle("/mysticker happy waving beach")
            user_id = users.find_user(db, "console", "me").id
            [job_id] = [j.id for j in jobs.active_jobs_for_user(db, user_id)]
            running = asyncio.create_task(worker.run_once())

            def step() -> int:
                progress = jobs.get_job(db, job_id).progress or {}
                return progress.get("step", 0) if progress.get("stage") == "adapting" else 0

            deadline = time.monotonic() + 180
            while step() < 2:
                assert time.monotonic() < deadline and not running.done(), "adaptation did not start"
                await asyncio.sleep(0.1)
            assert session.handle("/cancel") == "Cancelled “happy, waving, beach”."
            cancelled_at = time.monotonic()
            assert await asyncio.wait_for(running, 30)  # the worker let go of the job at once
            for _ in range(100):  # the runtime notices within its disconnect poll (0.5 s) and the next step
                health = await client.health()
                if health["running"] is None:
                    break
                await asyncio.sleep(0.1)
            freed_s = time.monotonic() - cancelled_at
            assert health["running"] is None and health["queued"] == 0, health
            assert step() < 400
            assert jobs.get_job(db, job_id).state == "cancelled"
            assert count(db, "SELECT COUNT(*) FROM stickers") == 0 and count(db, "SELECT COUNT(*) FROM embeddings") == 0
            assert sink.delivered == {} and sink.failures == {} and usage.quota_used(db, user_id) == 0
            assert worker.counters["cancelled"] == 1

            quick = replace(settings, adaptation=replace(settings.adaptation, steps=2))
            session.handle("/mysticker sad")
            started = time.monotonic()
            assert await JobWorker(db, quick, client, sink, worker_id="console-2").run_once()
            assert len(sink.delivered) == 1, "the next job ran on the freed runtime"
            print(f"GPU thread free {freed_s:.2f} s after /cancel at adaptation step {step()}; "
                  f"next job done in {time.monotonic() - started:.1f} s")
        finally:
            db.close()
