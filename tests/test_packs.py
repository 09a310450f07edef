"""/makepack: the plan, the quota, the durable group of jobs, progress, one delivery, crash resume."""

import asyncio
import collections
from dataclasses import replace

import pytest

from benchmarks.bench_reliability import bench_settings, character_png
from benchmarks.fakes.reliability_stub import CrashingStub
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.errors import UserError
from bot.job_worker import JobWorker
from bot.messages import JobView, ProgressEvent, StickerOut, UserRef
from bot.pack_plan import plan_pack
from bot.pack_service import PackService
from bot.schema.prompt_parser import parse_prompt
from bot.schema.vocabulary import EMOTION, emoji_for_emotion
from bot.service import StickerService
from seal_runtime.api.client import RuntimeClient
from storage import jobs, pack_orders, stickers, usage
from storage.database import open_database

ANN = UserRef("console", "ann", "Ann")
BOB = UserRef("console", "bob", "Bob")


class PackSink:
    """Records what the adapter would show: pack progress, and each delivery with its stickers."""

    def __init__(self):
        self.progress_seen = collections.defaultdict(list)
        self.delivered = collections.defaultdict(list)
        self.failed = collections.defaultdict(list)

    async def progress(self, job: JobView, update: ProgressEvent) -> None:
        self.progress_seen[job.job_id].append((update.stage, update.step, update.total))

    async def deliver(self, job: JobView, out: list[StickerOut]) -> None:
        self.delivered[job.job_id].append((job, out))

    async def failed(self, job: JobView, message: str) -> None:
        self.failed[job.job_id].append((job, message))


class Bed:
    def __init__(self, tmp_path, url, **limits):
        self.settings = bench_settings(str(tmp_path / "bot.sqlite"), url, **limits)
        self.db = open_database(self.settings.general.database)
        self.service = StickerService(self.db, self.settings)
        self.packs = PackService(self.db, self.settings, self.service)
        self.sink = PackSink()
        self.client = RuntimeClient(url)
        self.worker = self.new_worker("w1")

    def new_worker(self, worker_id):
        return JobWorker(self.db, self.settings, self.client, self.sink, worker_id=worker_id)

    def pack(self, text="", user=ANN):
        if (
            self.db.execute("SELECT 1 FROM users WHERE platform_user_id = ?", [user.platform_user_id]).fetchone()
            is None
        ):
            self.service.set_reference(user, character_png(0))
        return self.packs.make_pack(user, text, {"chat": user.platform_user_id})

    async def drain(self, worker=None, timeout=30.0):
        worker = worker or self.worker
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (
                not await worker.run_once()
                and self.db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed', 'cancelled') "
                    "OR delivered_at IS NULL"
                ).fetchone()[0]
                == 0
            ):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the queue did not drain")


@pytest.fixture
async def stub():
    async with running_stub_runtime(CrashingStub()) as stub:
        yield stub


@pytest.fixture
async def bed(tmp_path, stub):
    bed = Bed(tmp_path, stub.url)
    yield bed
    await bed.client.close()
    bed.db.close()


# -- the plan -----------------------------------------------------------------------------------
def test_a_pack_of_twelve_covers_every_emotion_twice_with_varied_actions_and_shots():
    requests = [parse_prompt(t) for t in plan_pack("", 12)]
    assert collections.Counter(r.emotion for r in requests) == dict.fromkeys(EMOTION.keys(), 2)
    assert len({(r.emotion, r.action) for r in requests}) == 12
    assert len({r.action for r in requests}) == 6
    assert {r.composition for r in requests} >= {"full body", "close up", "upper body"}
    assert all(r.background == "plain" for r in requests)


def test_the_users_words_go_into_every_sticker_and_named_attributes_stay_fixed():
    cozy = [parse_prompt(t) for t in plan_pack("cozy winter", 6)]
    assert all(r.free_text == ("cozy", "winter") for r in cozy)
    sad_beach = [parse_prompt(t) for t in plan_pack("sad beach", 6)]
    assert {r.emotion for r in sad_beach} == {"sad"} and {r.background for r in sad_beach} == {"beach"}
    assert len({r.action for r in sad_beach}) == 6


# -- queueing -----------------------------------------------------------------------------------
async def test_makepack_queues_one_order_of_n_jobs_counting_n_against_the_quota(bed):
    queued = bed.pack("cozy winter")
    assert queued.size == 12 and "0/12" in queued.user_message()
    order = pack_orders.get_order(bed.db, queued.order_id)
    members = pack_orders.member_jobs(bed.db, order)
    assert [m.request["pack_position"] for m in members] == list(range(12))
    assert all(m.kind == "pack_sticker" and m.state == "queued" for m in members)
    assert all("cozy winter" in m.request["text"] for m in members)
    user_id = members[0].user_id
    assert usage.quota_used(bed.db, user_id) == 12
    # ...and one request for the rate limit
    assert len(usage.request_times_since(bed.db, user_id, 0)) == 1


async def test_pack_size_and_quota_are_checked_before_anything_is_queued(tmp_path, stub):
    bed = Bed(tmp_path, stub.url, daily_quota=10)
    try:
        bed.pack("3 cozy")
        with pytest.raises(UserError, match="counts 12 against your daily quota, and you have 7 left"):
            bed.pack("")
        with pytest.raises(UserError, match="1 to 50 stickers"):
            bed.pack("51")
        with pytest.raises(UserError, match="1 to 50 stickers"):
            bed.pack("0 cozy")
        assert jobs.count_active(bed.db) == 3
        assert (
            usage.quota_used(
                bed.db,
                pack_orders.member_jobs(bed.db, pack_orders.last_order(bed.db, bed.service.user_id(ANN)))[0].user_id,
            )
            == 3
        )
    finally:
        await bed.client.close()
        bed.db.close()


async def test_makepack_needs_a_character_first(bed):
    with pytest.raises(UserError, match="/setref"):
        bed.packs.make_pack(BOB, "", {})


# -- running and delivering -----------------------------------------------------------------------
async def test_the_pack_is_delivered_once_whole_in_order_with_progress_for_the_set(bed):
    queued = bed.pack("5")
    await bed.drain()
    [(view, out)] = bed.sink.delivered[queued.order_id]
    assert view.pack is not None and (view.pack.size, view.pack.made) == (5, 5)
    order = pack_orders.get_order(bed.db, queued.order_id)
    assert [s.job_id for s in out] == list(order.job_ids)
    emotions = [parse_prompt(t).emotion for t in plan_pack("", 5)]
    assert [s.emoji for s in out] == [emoji_for_emotion(e) for e in emotions]
    steps = [step for stage, step, total in bed.sink.progress_seen[queued.order_id] if stage == "pack"]
    assert steps == sorted(steps) and steps[-1] == 4 and {1, 2, 3} <= set(steps)  # "4/5" before the pack itself
    assert not any(job_id in bed.sink.delivered for job_id in order.job_ids)  # no sticker was sent on its own
    assert order.delivered_at is not None and order.result == {"made": 5, "size": 5}


async def test_other_users_take_turns_with_a_pack(bed):
    queued = bed.pack("6")
    bed.service.set_reference(BOB, character_png(1))
    bob_job = bed.service.request_sticker(BOB, "happy", {"chat": "bob"}, seed=1).job_id
    order = pack_orders.get_order(bed.db, queued.order_id)
    for _ in range(3):
        assert await bed.worker.run_once()
    # Bob's one sticker ran second, not after the whole pack.
    assert jobs.get_job(bed.db, bob_job).state == "done"
    assert sum(j.state == "done" for j in pack_orders.member_jobs(bed.db, order)) == 2


async def test_a_crash_mid_pack_resumes_without_duplicates(bed):
    queued = bed.pack("6")
    order = pack_orders.get_order(bed.db, queued.order_id)
    for _ in range(3):
        assert await bed.worker.run_once()
    # A worker claims the fourth sticker and dies holding it.
    dead = jobs.claim_next_job(bed.db, "dead-worker", 0.05)
    assert dead is not None and dead.id == order.job_ids[3]
    await asyncio.sleep(0.1)
    survivor = bed.new_worker("w2")
    await bed.drain(survivor)
    members = pack_orders.member_jobs(bed.db, order)
    assert all(m.state == "done" for m in members)
    assert jobs.get_job(bed.db, order.job_ids[0]).attempts == 1  # finished stickers were not redone
    assert jobs.get_job(bed.db, order.job_ids[3]).attempts == 2
    user_id = members[0].user_id
    assert len(stickers.stickers_for_user(bed.db, user_id)) == 6  # one per sticker of the pack
    assert len(bed.sink.delivered[queued.order_id]) == 1


async def test_a_pack_whose_delivery_failed_is_sent_again_later_once(bed):
    queued = bed.pack("3")

    calls = []

    async def flaky(job, out):
        calls.append(job.job_id)
        if len(calls) == 1:
            raise ConnectionError("platform down")
        bed.sink.delivered[job.job_id].append((job, out))

    bed.sink.deliver = flaky
    bed.worker.retry_base_s = 0.01
    await bed.drain()
    assert calls == [queued.order_id, queued.order_id]
    assert len(bed.sink.delivered[queued.order_id]) == 1


async def test_a_sticker_that_keeps_failing_leaves_the_rest_of_the_pack(tmp_path):
    poison = CrashingStub(drop=lambda job: "sleepy" in job.prompts[0])
    async with running_stub_runtime(poison) as stub:
        bed = Bed(tmp_path, stub.url, job_attempts=2)
        try:
            queued = bed.pack("6")
            await bed.drain()
            [(view, out)] = bed.sink.delivered[queued.order_id]
            assert (view.pack.made, view.pack.failed) == (5, 1) and len(out) == 5
            assert not bed.sink.failed  # the failed sticker is told with the pack, not on its own
        finally:
            await bed.client.close()
            bed.db.close()


async def test_forget_removes_the_pack_order(bed):
    queued = bed.pack("3")
    bed.service.forget(ANN)
    assert pack_orders.get_order(bed.db, queued.order_id) is None
    await bed.drain()
    assert not bed.sink.delivered


def test_pack_settings_bound_the_size(tmp_path):
    settings = bench_settings(str(tmp_path / "b.sqlite"), "http://127.0.0.1:1")
    settings = replace(settings, packs=replace(settings.packs, default_size=4, max_size=8))
    service = PackService(open_database(settings.general.database), settings)
    assert service.parse_command("") == (4, "")
    assert service.parse_command("8 cozy winter") == (8, "cozy winter")
    with pytest.raises(UserError):
        service.parse_command("9")


async def test_a_pack_is_one_request_for_the_per_user_queue_cap(tmp_path, stub):
    bed = Bed(tmp_path, stub.url, user_queue_cap=3)
    try:
        bed.pack("12")  # 12 jobs, one request
        bed.service.request_sticker(ANN, "happy", {"chat": "ann"})
        bed.service.request_sticker(ANN, "sad", {"chat": "ann"})
        with pytest.raises(UserError, match="already have 3 stickers on the way"):
            bed.service.request_sticker(ANN, "angry", {"chat": "ann"})
        assert jobs.count_active(bed.db) == 14
    finally:
        await bed.client.close()
        bed.db.close()
