"""Scale-out through Redis, against a real redis-server and real `stickerbot gpu-worker`
processes beside stub runtimes: kills, a Redis crash, fairness, a worker joining, aborts."""

import asyncio
import contextlib
import time
from dataclasses import asdict

import pytest
from aiohttp import web

from benchmarks.bench_scale import ScaleBed
from benchmarks.fakes.stub_runtime import StubRuntime, running_stub_runtime
from benchmarks.gpu_fleet import GpuFleet, running_gpu_worker
from seal_runtime.api import redis_jobs
from storage import jobs


class TrackingStub(StubRuntime):
    """A stub runtime that knows how many jobs it is running now, and how many were cut off
    (the connection closed under it: a killed worker, an aborted job)."""

    def __init__(self, **knobs) -> None:
        super().__init__(**knobs)
        self.running: dict[int, web.Request] = {}  # by id(): requests are not hashable
        self.cut_off = 0

    @property
    def active(self) -> int:
        """Jobs mid-way, for a client still connected (one whose worker was just killed is not):
        in their steps, the result not yet sent. A worker killed after it had the result may be
        killed before arq marked the job complete; arq then runs it again, but the bot, told
        already, no longer watches it: that kill proves nothing about a takeover."""
        return sum(1 for key, r in self.running.items()
                   if key in self.stepping and r.transport is not None and not r.transport.is_closing())

    async def run_job(self, request: web.Request) -> web.StreamResponse:
        self.running[id(request)] = request
        try:
            return await super().run_job(request)
        except (ConnectionResetError, ConnectionError):
            self.cut_off += 1
            raise
        finally:
            self.running.pop(id(request), None)


@contextlib.asynccontextmanager
async def stubs(count: int, **knobs):
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_stub_runtime(TrackingStub(**knobs))) for _ in range(count)]


async def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def all_once(bed: ScaleBed, n: int) -> dict:
    return {"jobs": n, "done": n, "failed": 0, "delivered_once": n, "never_delivered": 0, "delivered_twice_or_more": 0}


@contextlib.asynccontextmanager
async def scaled_bot(
    tmp_path,
    redis_server,
    workers: int,
    *,
    started: int | None = None,
    seconds_per_job=0.5,
    job_lease_s: float | None = None,
    max_tries: int | None = None,
    **bed_options,
):
    """`workers` stub runtimes (`seconds_per_job` each) and a GpuFleet with the first `started`
    of them running (all by default), registered, and a ScaleBed: (runtimes, fleet, ids, bed)."""
    steps = 5
    async with stubs(workers, adapt_steps=0, generate_steps=steps, step_delay_s=seconds_per_job / steps) as runtimes:
        with GpuFleet(redis_server.url, tmp_path / "logs", job_lease_s=job_lease_s, max_tries=max_tries) as fleet:
            ids = [f"gpu{i}" for i in range(workers)]
            for worker_id, stub in list(zip(ids, runtimes))[: started or workers]:
                fleet.start(worker_id, stub.url)
            bed = ScaleBed(tmp_path / "bot", redis_server.url, generate_steps=steps, **bed_options)
            try:
                await fleet.wait_registered(await bed.client.connection(), ids[: started or workers])
                yield runtimes, fleet, ids, bed
            finally:
                await bed.stop()


async def test_sigkilling_gpu_workers_mid_job_again_and_again_loses_and_doubles_nothing(tmp_path, redis_server):
    async with scaled_bot(tmp_path, redis_server, 3, seconds_per_job=0.8, job_lease_s=2.0, max_tries=10) as (
        runtimes,
        fleet,
        ids,
        bed,
    ):
        for k in range(15):
            bed.ask(k % 5)
        bed.start()
        for _ in range(4):
            await until(lambda: any(s.active for s in runtimes), 30, "a worker mid-job")
            victim = next(i for i, s in enumerate(runtimes) if s.active)
            fleet.kill(ids[victim])
            fleet.start(ids[victim], runtimes[victim].url)  # the box restarts it
            await asyncio.sleep(0.3)
        assert await bed.wait_all_told(180), bed.outcome()
        assert bed.outcome() == all_once(bed, 15)
        # Each killed job was picked up again by arq (a new try), not re-queued by the bot.
        assert bed.client.counters["redone"] >= 4
        assert bed.client.counters["enqueued"] == 15
        assert sum(s.cut_off for s in runtimes) >= 4


async def test_a_redis_crash_while_jobs_wait_in_its_queue_loses_nothing(tmp_path, redis_server):
    # Six job workers for two GPU slots: four attempts wait in arq's queue.
    async with scaled_bot(tmp_path, redis_server, 2, gpu_jobs=6) as (runtimes, _, _, bed):
        redis = await bed.client.connection()
        for k in range(12):
            bed.ask(k)
        bed.start()
        queued = 0
        deadline = time.monotonic() + 30
        while queued < 3 and time.monotonic() < deadline:
            queued = await redis.zcard(redis_jobs.QUEUE_NAME) - sum(s.active for s in runtimes)
            await asyncio.sleep(0.02)
        assert queued >= 3
        await asyncio.to_thread(redis_server.restart, kill=True, down_s=1.0)  # a crash, AOF on
        assert await bed.wait_all_told(120), bed.outcome()
        assert bed.outcome() == all_once(bed, 12)
        # Nothing had to be queued again: the AOF kept every attempt that waited in Redis.
        assert bed.client.counters["enqueued"] == 12


async def test_light_users_first_stickers_do_not_wait_behind_a_heavy_users_backlog(tmp_path, redis_server):
    async with scaled_bot(tmp_path, redis_server, 3) as (_, _, _, bed):
        heavy = [bed.ask(0, f"happy waving {k}") for k in range(20)]
        light = [bed.ask(1 + k) for k in range(8)]
        bed.start()
        assert await bed.wait_all_told(120), bed.outcome()
        assert bed.outcome() == all_once(bed, 28)
        claimed = {job_id: jobs.get_job(bed.db, job_id).claimed_at for job_id in heavy + light}
        last_light = max(claimed[j] for j in light)
        # Every light user went before the heavy user's second sticker.
        assert sum(1 for j in heavy if claimed[j] < last_light) <= 1
        created = {job_id: jobs.get_job(bed.db, job_id).created_at for job_id in light}
        waits = [bed.sink.delivered_at[j] - created[j] for j in light]
        heavy_backlog_s = 20 * 0.5
        assert max(waits) < heavy_backlog_s / 3, waits


async def test_a_gpu_worker_that_joins_mid_run_takes_work(tmp_path, redis_server):
    async with scaled_bot(tmp_path, redis_server, 2, started=1, check_interval_s=0.2) as (runtimes, fleet, _, bed):
        for k in range(24):
            bed.ask(k % 6)
        bed.start()
        await until(lambda: len(bed.sink.deliveries) >= 2, 30, "two stickers from one worker")
        assert len(bed.pool.slots) == 1 and runtimes[1].jobs == []
        fleet.start("gpu1", runtimes[1].url)
        await fleet.wait_registered(await bed.client.connection(), ["gpu1"])
        await until(lambda: len(bed.pool.slots) == 2, 10, "a second job worker")
        assert await bed.wait_all_told(60), bed.outcome()
        assert bed.outcome() == all_once(bed, 24)
        assert len(runtimes[1].jobs) >= 3


async def test_shutting_the_bot_down_mid_job_aborts_the_gpu_work_and_requeues_the_job_uncounted(tmp_path, redis_server):
    async with (
        stubs(1, adapt_steps=0, generate_steps=100, step_delay_s=0.1) as (stub,),
        running_gpu_worker(redis_server.url, stub.url, poll_delay_s=0.02),
    ):
        bed = ScaleBed(tmp_path / "bot", redis_server.url, generate_steps=100)
        job_id = bed.ask(0)
        bed.start()
        await until(lambda: stub.active == 1, 20, "the job on the GPU")
        bed._task.cancel()  # what `stickerbot run` does when the grace is over
        with contextlib.suppress(asyncio.CancelledError):
            await bed._task
        await until(lambda: stub.cut_off == 1, 5, "the runtime's work cut off")
        job = jobs.get_job(bed.db, job_id)
        assert job.state == "queued" and job.attempts == 0
        redis = await bed.client.connection()
        assert await redis.zcard(redis_jobs.QUEUE_NAME) == 0
        await bed.client.close()
        bed.db.close()


async def test_a_job_over_the_gpu_workers_timeout_ends_failed_and_its_user_is_told_once(tmp_path, redis_server):
    async with (
        stubs(1, adapt_steps=0, generate_steps=100, step_delay_s=0.1) as (stub,),
        running_gpu_worker(redis_server.url, stub.url, job_timeout_s=1.0, poll_delay_s=0.02),
    ):
        bed = ScaleBed(tmp_path / "bot", redis_server.url, generate_steps=100, job_attempts=1)
        try:
            job_id = bed.ask(0)
            bed.start()
            assert await bed.wait_all_told(20)
            job = jobs.get_job(bed.db, job_id)
            assert job.state == "failed" and "timed out after 1 s on GPU worker" in job.error
            assert bed.sink.times_told(job_id) == 1
            # The stub sees the closed connection at its next step's write, which can come after the user was told.
            await until(lambda: stub.cut_off == 1, 5, "the runtime's work cut off")
        finally:
            await bed.stop()


async def test_enqueueing_the_same_attempt_twice_runs_it_once(tmp_path, redis_server):
    from seal_runtime.api.protocol import JobRequest
    from seal_runtime.api.redis_client import RedisRuntimeClient

    client = RedisRuntimeClient(redis_server.url)
    request = JobRequest("job-1", b"png", ("a cat",), (1,), {}, {}, attempt=2)
    try:
        redis = await client.connection()
        first = await client._enqueue(redis, request)
        again = await client._enqueue(redis, request)  # the first reply was lost on the way back
        assert first.job_id == again.job_id == "job-1:2"
        assert await redis.zcard(redis_jobs.QUEUE_NAME) == 1
        assert client.counters == {"enqueued": 1, "reattached": 1}
        # The next attempt is another arq job.
        third = await client._enqueue(redis, JobRequest("job-1", b"png", ("a cat",), (1,), {}, {}, attempt=3))
        assert third.job_id == "job-1:3"
    finally:
        await client.close()


@pytest.mark.parametrize("run_entry", [redis_jobs.started_entry(2, "gpu7")])
def test_a_frames_entry_reads_back_as_written(run_entry):
    assert redis_jobs.Entry.from_fields(run_entry.fields()) == run_entry
    with pytest.raises(ValueError):
        redis_jobs.Entry.from_fields({b"kind": b"pickle", b"try": b"1", b"data": b""})


@pytest.mark.slow
async def test_the_builtin_model_on_two_real_runtimes_end_to_end(tmp_path, redis_server):
    import io

    from PIL import Image

    from storage import embeddings, stickers
    from tests.runtime_helpers import running_runtime

    async with running_runtime() as (first, _, _), running_runtime() as (second, _, _):
        with GpuFleet(redis_server.url, tmp_path / "logs") as fleet:
            fleet.start("gpu0", first.base_url)
            fleet.start("gpu1", second.base_url)
            bed = ScaleBed(tmp_path / "bot", redis_server.url, adapt_steps=3, generate_steps=3)
            try:
                await fleet.wait_registered(await bed.client.connection(), ["gpu0", "gpu1"], timeout_s=120)
                asked = [bed.ask(0), bed.ask(1), bed.ask(0, "sad sitting night sky")]
                bed.start()
                assert await bed.wait_all_told(600), bed.outcome()
                assert bed.outcome() == all_once(bed, 3)
                done = [(await first.health())["jobs_done"], (await second.health())["jobs_done"]]
                assert sum(done) == 3 and min(done) >= 1, done  # both runtimes took work
                model_id = (await first.health())["model_id"]
                assert (await bed.client.health())["model_id"] == model_id
                for job_id in asked:
                    job = jobs.get_job(bed.db, job_id)
                    (sticker,) = stickers.stickers_for_job(bed.db, job.user_id, job_id)
                    assert Image.open(io.BytesIO(sticker.image)).mode == "RGBA"
                    settings_hash = bed.settings.adaptation.settings_hash(model_id)
                    assert (
                        embeddings.get_embedding(bed.db, job.request["reference_sha256"], model_id, settings_hash)
                        is not None
                    )
                # The second sticker of user 0 used the concept learned by the first, wherever it ran.
                assert jobs.get_job(bed.db, asked[2]).result["adapted"] is False
            finally:
                await bed.stop()


async def test_stickerbot_run_scaled_out_starts_no_runtime_and_runs_a_job_worker_per_gpu_slot(tmp_path, redis_server):
    import aiohttp

    from adapters.cli.runtime_child import free_port
    from adapters.cli.supervisor import Supervisor
    from benchmarks.bench_reliability import FileAdapter, read_deliveries

    bed = ScaleBed(tmp_path / "bot", redis_server.url)  # its settings and users; its pool stays unused
    asked = [bed.ask(k) for k in range(4)]

    def no_runtime_here():
        raise AssertionError("scaled out, `stickerbot run` must not start a runtime")

    health_port = free_port()
    deliveries = tmp_path / "deliveries.jsonl"
    supervisor = Supervisor(
        bed.settings,
        adapters=[FileAdapter(deliveries)],
        runtime_spawn=no_runtime_here,
        health_port=health_port,
        idle_sleep=0.02,
    )
    async with (
        stubs(2, adapt_steps=0, generate_steps=3, step_delay_s=0.1) as runtimes,
        running_gpu_worker(redis_server.url, runtimes[0].url, worker_id="a"),
        running_gpu_worker(redis_server.url, runtimes[1].url, worker_id="b"),
    ):
        stop = asyncio.Event()
        task = asyncio.create_task(supervisor.run(stop))
        try:
            await asyncio.wait_for(supervisor.started.wait(), 20)
            await until(lambda: all(read_deliveries(deliveries)[j] == 1 for j in asked), 30, "four stickers")
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                body = await resp.json()
            assert resp.status == 200 and body["status"] == "ok"
            assert body["runtime"]["gpu_slots"] == 2 and body["runtime"]["job_workers"] == 2
            assert body["worker"]["done"] == 4
            assert {w.worker_id for w in supervisor.pool.workers} == {"stickerbot-run", "stickerbot-run-1"}
            assert runtimes[0].jobs and runtimes[1].jobs
        finally:
            stop.set()
            assert await asyncio.wait_for(task, 30) == 0
    assert read_deliveries(deliveries) == {job_id: 1 for job_id in asked}
    await bed.client.close()
    bed.db.close()


class RefusingStub(StubRuntime):
    """Answers /healthz, but drops every job's connection at once: a runtime that never got it."""

    async def run_job(self, request: web.Request) -> web.StreamResponse:
        self.jobs.append(None)
        request.transport.close()
        raise ConnectionResetError("dropped")


async def test_a_job_its_runtime_never_got_goes_to_another_gpu_worker_at_no_cost(tmp_path, redis_server):
    async with (
        running_stub_runtime(RefusingStub()) as refusing,
        running_gpu_worker(redis_server.url, refusing.url, worker_id="a", poll_delay_s=0.02),
    ):
        bed = ScaleBed(tmp_path / "bot", redis_server.url, gpu_jobs=1)
        try:
            job_id = bed.ask(0)
            bed.start()
            await until(lambda: refusing.jobs, 20, "the first worker to try it")
            async with (
                running_stub_runtime(TrackingStub(adapt_steps=0, generate_steps=2)) as healthy,
                running_gpu_worker(redis_server.url, healthy.url, worker_id="b", poll_delay_s=0.02),
            ):
                assert await bed.wait_all_told(30), bed.outcome()
                assert len(healthy.jobs) == 1
            job = jobs.get_job(bed.db, job_id)
            assert job.state == "done" and job.attempts == 1 and bed.sink.times_told(job_id) == 1
            assert bed.client.counters["enqueued"] == 1  # arq moved it; the bot did not queue it again
        finally:
            await bed.stop()


async def test_a_request_a_gpu_worker_cannot_read_fails_at_once_instead_of_looping(tmp_path, redis_server):
    from seal_runtime.api.protocol import JobRequest, RuntimeJobError
    from seal_runtime.api.redis_client import RedisRuntimeClient

    async with running_stub_runtime() as stub, running_gpu_worker(redis_server.url, stub.url, poll_delay_s=0.02):
        client = RedisRuntimeClient(redis_server.url)
        try:
            garbled = JobRequest("job-9", b"png", ("a cat",), ("not a seed",), {}, {}, attempt=1)
            with pytest.raises(RuntimeJobError, match="bad job request") as caught:
                await asyncio.wait_for(client.run_job(garbled), 20)
            assert caught.value.retryable is False and stub.jobs == []
        finally:
            await client.close()


async def test_through_redis_the_learned_concept_comes_before_generation_and_the_images_after(tmp_path, redis_server):
    from seal_runtime.api.config import AdaptationSettings, GenerationSettings
    from seal_runtime.api.protocol import JobRequest
    from seal_runtime.api.redis_client import RedisRuntimeClient

    async with (
        running_stub_runtime(TrackingStub(adapt_steps=2, generate_steps=2)) as stub,
        running_gpu_worker(redis_server.url, stub.url, poll_delay_s=0.02),
    ):
        client = RedisRuntimeClient(redis_server.url)
        seen: list[str] = []

        async def on_progress(event) -> None:
            seen.append(event.stage)

        async def on_concept(concept) -> None:
            seen.append(f"concept {concept.embedding.decode()}")

        request = JobRequest(
            "job-7", b"png", ("a cat",), (1,), asdict(AdaptationSettings()), asdict(GenerationSettings()), attempt=1
        )
        try:
            result = await asyncio.wait_for(client.run_job(request, on_progress, on_concept), 20)
        finally:
            await client.close()
        assert seen == ["queued", "started", "adapting", "adapting", "concept stub-learned-embeds", "generating",
                        "generating"]  # fmt: skip
        assert result.adapted and result.images_png == (stub.png,) and result.embedding == b"stub-learned-embeds"
