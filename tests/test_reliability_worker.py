"""The job worker against the stub runtime: retries, poison jobs, outages, timeouts,
shutdown, and delivery that is neither lost nor doubled."""

import asyncio
import contextlib

import pytest

from benchmarks.bench_reliability import RecordingSink, bench_settings, character_png
from benchmarks.fakes.reliability_stub import CrashingStub
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.job_worker import JobWorker
from bot.messages import UserRef
from bot.service import StickerService
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import RuntimeJobError
from storage import deliveries, jobs, stickers
from storage.database import open_database
from storage.records import RUNNING_STATES

ANN = UserRef("console", "ann", "Ann")
BOB = UserRef("console", "bob", "Bob")


class Bed:
    def __init__(self, tmp_path, url, **limits):
        self.settings = bench_settings(str(tmp_path / "bot.sqlite"), url, **limits)
        self.db = open_database(self.settings.general.database)
        self.service = StickerService(self.db, self.settings)
        self.sink = RecordingSink()
        self.client = RuntimeClient(url)
        self.worker = JobWorker(self.db, self.settings, self.client, self.sink, worker_id="w1")

    def ask(self, user=ANN, text="happy waving", index=0):
        if self.service.db.execute("SELECT 1 FROM users WHERE platform_user_id = ?", [user.platform_user_id]).fetchone() \
                is None:
            self.service.set_reference(user, character_png(index))
        return self.service.request_sticker(user, text, {"chat": user.platform_user_id}, seed=1).job_id

    async def drain(self, timeout=20.0):
        stop = asyncio.Event()
        task = asyncio.create_task(self.worker.run_forever(stop, idle_sleep=0.01))
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.db.execute("SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed', 'cancelled') "
                               "OR delivered_at IS NULL").fetchone()[0] == 0:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await task

    async def close(self):
        await self.client.close()
        self.db.close()


@pytest.fixture
async def stub():
    async with running_stub_runtime(CrashingStub()) as stub:
        yield stub


@pytest.fixture
async def bed(tmp_path, stub):
    bed = Bed(tmp_path, stub.url)
    yield bed
    await bed.close()


async def test_a_retryable_runtime_error_is_retried_after_a_backoff_and_delivered_once(bed, stub):
    stub.fail_next = 1
    job_id = bed.ask()
    assert await bed.worker.run_once()
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("queued", 1)
    assert job.next_attempt_at - job.updated_at == pytest.approx(bed.settings.limits.retry_base_s, abs=0.01)
    await bed.drain()
    assert jobs.get_job(bed.db, job_id).state == "done"
    assert bed.sink.deliveries[job_id] == 1


async def test_backoff_doubles_per_attempt_and_is_capped(tmp_path, stub):
    bed = Bed(tmp_path, stub.url, retry_base_s=1.0, retry_max_s=3.0, job_attempts=5)
    stub.fail_next = 4
    job_id = bed.ask()
    delays = []
    for _ in range(4):
        bed.db.execute("UPDATE jobs SET next_attempt_at = 0 WHERE id = ?", [job_id])  # skip the wait
        assert await bed.worker.run_once()
        job = jobs.get_job(bed.db, job_id)
        delays.append(round(job.next_attempt_at - job.updated_at, 2))
    assert delays == [1.0, 2.0, 3.0, 3.0]
    await bed.close()


async def test_a_poison_job_fails_after_n_attempts_tells_its_user_once_and_others_still_get_stickers(bed, stub):
    stub.drop = lambda job: "poison" in job.prompts[0]  # the runtime "dies" on it every time
    bad = bed.ask(ANN, "poison happy")
    good = bed.ask(BOB, "sad sitting", index=1)
    await bed.drain()
    job = jobs.get_job(bed.db, bad)
    assert job.state == "failed" and job.attempts == bed.settings.limits.job_attempts == 3
    assert stub.served[bad] == 3
    assert bed.sink.failures[bad] == [bed.sink.failures[bad][0]]
    assert "after 3 tries" in bed.sink.failures[bad][0] and "poison" in bed.sink.failures[bad][0]
    assert bed.sink.deliveries[good] == 1 and bad not in bed.sink.deliveries


async def test_a_runtime_outage_does_not_use_up_attempts(tmp_path):
    async with running_stub_runtime(CrashingStub()) as stub:
        url = stub.url
    bed = Bed(tmp_path, url)  # nothing listens there any more
    job_id = bed.ask()
    outcomes = []
    for _ in range(5):
        bed.db.execute("UPDATE jobs SET next_attempt_at = 0")
        try:
            outcomes.append(await bed.worker.run_once())
        except RuntimeJobError:
            outcomes.append("down")
    # One claim finds the runtime gone and gives the job back; then no claim until /healthz answers.
    assert outcomes == [True, "down", "down", "down", "down"]
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("queued", 0)
    await bed.close()


async def test_the_reference_deleted_before_the_job_ran_fails_at_once_with_a_clear_message(bed):
    job_id = bed.ask()
    bed.db.execute("DELETE FROM reference_images")
    await bed.drain()
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert "character was deleted" in bed.sink.failures[job_id][0]


class HeldStub(CrashingStub):
    """A runtime that takes a job and then holds it until `release` is set: a test waits for
    `arrived` (the job is in the runtime's hands) instead of guessing how long a job takes."""

    def __init__(self, **options):
        super().__init__(**options)
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def run_job(self, request):
        self.arrived.set()
        await self.release.wait()
        return await super().run_job(request)


@contextlib.asynccontextmanager
async def held_stub():
    stub = HeldStub()
    async with running_stub_runtime(stub):
        try:
            yield stub
        finally:
            stub.release.set()  # held handlers answer, so the server can close at once


async def test_an_attempt_that_overruns_the_job_timeout_is_retried_then_failed(tmp_path):
    # The runtime never answers: each attempt overruns the job timeout however fast or slow
    # this machine is; the drain waits for the job's end state, with a minute to get there.
    async with held_stub() as stub:
        bed = Bed(tmp_path, stub.url, job_timeout_s=0.3, job_attempts=2)
        job_id = bed.ask()
        await bed.drain(timeout=60)
        job = jobs.get_job(bed.db, job_id)
        assert (job.state, job.attempts) == ("failed", 2) and stub.served[job_id] == 0
        assert "timed out" in job.error and "took too long" in bed.sink.failures[job_id][0]
        await bed.close()


async def test_cancelling_the_worker_mid_job_requeues_it_without_costing_an_attempt(tmp_path):
    async with held_stub() as stub:
        bed = Bed(tmp_path, stub.url)
        job_id = bed.ask()
        task = asyncio.create_task(bed.worker.run_forever(asyncio.Event(), idle_sleep=0.01))
        await asyncio.wait_for(stub.arrived.wait(), 60)  # mid-job: the runtime holds it
        held = jobs.get_job(bed.db, job_id)
        assert held.state in RUNNING_STATES and held.attempts == 1 and held.lease_owner == "w1"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        job = jobs.get_job(bed.db, job_id)
        assert (job.state, job.attempts, job.lease_owner) == ("queued", 0, None)
        stub.release.set()
        await bed.drain(timeout=60)
        assert bed.sink.deliveries[job_id] == 1
        await bed.close()


async def test_stop_lets_the_job_in_hand_finish(tmp_path):
    async with running_stub_runtime(CrashingStub(step_delay_s=0.02)) as stub:
        bed = Bed(tmp_path, stub.url)
        job_id = bed.ask()
        stop = asyncio.Event()
        task = asyncio.create_task(bed.worker.run_forever(stop, idle_sleep=0.01))
        while jobs.get_job(bed.db, job_id).state == "queued":
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert jobs.get_job(bed.db, job_id).state == "done" and bed.sink.deliveries[job_id] == 1
        await bed.close()


class FlakySink(RecordingSink):
    def __init__(self, failures: int):
        super().__init__()
        self.failures_left = failures
        self.calls = 0

    async def deliver(self, job, stickers):
        self.calls += 1
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("platform said 502")
        await super().deliver(job, stickers)


async def test_a_failed_send_is_retried_later_and_then_delivered_once(bed):
    bed.worker.sink = sink = FlakySink(failures=1)
    job_id = bed.ask()
    await bed.worker.run_once()
    job = jobs.get_job(bed.db, job_id)
    assert job.state == "done" and job.delivered_at is None and "502" in job.delivery_error
    await bed.worker.deliver_pending()  # still backing off
    assert sink.calls == 1
    bed.db.execute("UPDATE jobs SET delivery_next_at = 0")
    assert await bed.worker.deliver_pending() == 1
    assert await bed.worker.deliver_pending() == 0
    assert sink.deliveries[job_id] == 1 and sink.calls == 2


async def test_a_send_that_always_fails_is_given_up_after_n_tries_and_recorded(bed):
    bed.worker.sink = sink = FlakySink(failures=100)
    job_id = bed.ask()
    await bed.worker.run_once()
    for _ in range(10):
        bed.db.execute("UPDATE jobs SET delivery_next_at = 0")
        await bed.worker.deliver_pending()
    job = jobs.get_job(bed.db, job_id)
    assert sink.calls == bed.settings.limits.delivery_attempts == job.delivery_attempts
    assert job.delivered_at is not None and "502" in job.delivery_error


async def test_a_sender_that_died_mid_send_is_replaced_after_its_claim_expires(bed):
    job_id = bed.ask()
    job = jobs.claim_next_job(bed.db, "w2", 30)
    # w2 ran the job and claimed the delivery, then died before sending.
    stickers.save_sticker(bed.db, job.user_id, job_id, character_png(0), "😀", {}, position=0)
    assert jobs.finish_job(bed.db, job_id, {}, worker_id="w2")
    assert deliveries.claim_delivery(bed.db, job_id, "w2", 300)
    assert await bed.worker.deliver_pending() == 0  # w2's claim is still live
    bed.db.execute("UPDATE jobs SET delivery_expires_at = 0 WHERE id = ?", [job_id])
    assert await bed.worker.deliver_pending() == 1
    assert not deliveries.confirm_delivery(bed.db, job_id, "w2")  # the dead sender cannot confirm any more
    assert bed.sink.deliveries[job_id] == 1


async def test_a_restarted_worker_reclaims_its_own_jobs_at_once(bed):
    job_id = bed.ask()
    jobs.claim_next_job(bed.db, "w1", 3600)  # a previous life of w1 died holding it for an hour
    assert jobs.claim_next_job(bed.db, "w9", 60) is None
    assert bed.worker.recover() == {"running": 1, "delivering": 0}
    await bed.drain()
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("done", 2)  # the interrupted attempt counts
    assert bed.sink.deliveries[job_id] == 1


async def test_a_worker_takes_only_jobs_of_its_platforms(bed):
    console_job = bed.ask()
    worker = JobWorker(bed.db, bed.settings, bed.client, RecordingSink(), worker_id="tg", platforms=("telegram",))
    assert await worker.run_once() is False
    assert jobs.get_job(bed.db, console_job).state == "queued"


async def test_one_running_job_per_user_with_several_workers(tmp_path):
    async with running_stub_runtime(CrashingStub(step_delay_s=0.01)) as stub:
        bed = Bed(tmp_path, stub.url)
        ids = [bed.ask(ANN, "happy") for _ in range(3)] + [bed.ask(BOB, "sad", index=1) for _ in range(3)]
        worker_dbs = [open_database(bed.settings.general.database) for _ in range(3)]
        workers = [JobWorker(d, bed.settings, bed.client, bed.sink, worker_id=f"x{i}") for i, d in enumerate(worker_dbs)]
        peak: dict[int, int] = {}
        stop = asyncio.Event()

        async def watch():
            while not stop.is_set():
                for user_id, n in bed.db.execute("SELECT user_id, COUNT(*) FROM jobs WHERE state IN "
                                                 "('adapting', 'generating') GROUP BY user_id").fetchall():
                    peak[user_id] = max(peak.get(user_id, 0), n)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        tasks = [asyncio.create_task(w.run_forever(stop, idle_sleep=0.01)) for w in workers]
        while sum(bed.sink.deliveries[j] for j in ids) < len(ids):
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(watcher, *tasks)
        assert max(peak.values()) == 1
        assert all(bed.sink.deliveries[j] == 1 for j in ids)
        for d in worker_dbs:
            d.close()
        await bed.close()
