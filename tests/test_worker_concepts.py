"""The worker and the learned concept: stored the moment adaptation ends (so a retry never
adapts again), never brought back after /forget, and a cached one that the runtime cannot
use is dropped and learned again once. Real worker, real SQLite, the real runtime server
with a scripted engine."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from benchmarks.bench_reliability import RecordingSink, bench_settings, character_png
from bot.job_worker import JobWorker
from bot.messages import UserRef
from bot.service import StickerService
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import BAD_CACHED_CONCEPT, RuntimeJobError
from seal_runtime.ttf.embedding_io import embedding_to_bytes
from storage import embeddings, jobs
from storage.database import open_database
from tests.scripted_engine import MODEL_ID, ScriptedEngine, finished, serving

ANN = UserRef("console", "ann", "Ann")


class Bed:
    def __init__(self, tmp_path, url):
        self.settings = bench_settings(str(tmp_path / "bot.sqlite"), url)
        self.db = open_database(self.settings.general.database)
        self.service = StickerService(self.db, self.settings)
        self.sink = RecordingSink()
        self.client = RuntimeClient(url)
        self.worker = JobWorker(self.db, self.settings, self.client, self.sink, worker_id="w1")
        self.reference = self.service.set_reference(ANN, character_png(0))

    def ask(self) -> str:
        return self.service.request_sticker(ANN, "happy waving", {"chat": "ann"}, seed=1).job_id

    def cached(self):
        sha = self.db.execute("SELECT sha256 FROM reference_images").fetchone()
        if sha is None:
            return None
        settings_hash = self.settings.adaptation.settings_hash(MODEL_ID)
        return embeddings.get_embedding(self.db, sha[0], MODEL_ID, settings_hash, touch=False)

    async def close(self):
        await self.client.close()
        self.db.close()


@pytest.fixture
async def scripted(tmp_path):
    engine = ScriptedEngine()
    async with serving(engine) as url:
        bed = Bed(tmp_path, url)
        yield engine, bed
        await bed.close()


async def test_the_concept_is_stored_when_adaptation_ends_and_the_retry_does_not_adapt_again(scripted):
    engine, bed = scripted

    def script(request, control):
        if request.embedding is None:
            finished(request, control)  # adapts and hands over the concept...
            raise RuntimeError("CUDA error: an illegal memory access")  # ...then generation dies
        return finished(request, control)

    engine.script = script
    job_id = bed.ask()
    assert await bed.worker.run_once()
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("queued", 1)
    assert bed.cached().data == b"learned-embeds"  # kept, though the attempt failed

    await asyncio.sleep(bed.settings.limits.retry_base_s + 0.05)
    while await bed.worker.run_once():
        pass
    assert jobs.get_job(bed.db, job_id).state == "done" and bed.sink.deliveries[job_id] == 1
    assert [r.embedding for r in engine.requests] == [None, b"learned-embeds"]  # adapted once


async def test_forget_while_adapting_leaves_nothing_of_the_user(scripted):
    engine, bed = scripted
    adapting, forgotten = threading.Event(), threading.Event()

    def script(request, control):
        adapting.set()
        forgotten.wait(10)  # /forget runs while this job adapts
        return finished(request, control)

    engine.script = script
    job_id = bed.ask()
    work = asyncio.create_task(bed.worker.run_once())
    assert await asyncio.to_thread(adapting.wait, 10)
    assert bed.service.forget(ANN)
    forgotten.set()
    await work
    assert jobs.get_job(bed.db, job_id) is None
    assert bed.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    assert bed.sink.deliveries[job_id] == 0


async def test_a_cached_embedding_the_runtime_cannot_use_is_dropped_and_learned_again_once(scripted):
    engine, bed = scripted

    def script(request, control):
        if request.embedding == b"made-for-another-model":
            raise RuntimeJobError("the cached embedding has shape (3, 768), this model needs (k, 128)",
                                  retryable=False, code=BAD_CACHED_CONCEPT)
        return finished(request, control)

    engine.script = script
    sha = bed.db.execute("SELECT sha256 FROM reference_images").fetchone()[0]
    embeddings.put_embedding(bed.db, sha, MODEL_ID, bed.settings.adaptation.settings_hash(MODEL_ID),
                             b"made-for-another-model")
    job_id = bed.ask()
    assert await bed.worker.run_once()
    job = jobs.get_job(bed.db, job_id)
    assert (job.state, job.attempts) == ("done", 1)
    assert bed.cached().data == b"learned-embeds"  # replaced by the freshly learned one
    assert [r.embedding for r in engine.requests] == [b"made-for-another-model", None]

    # The next job uses the new entry: no second adaptation, no second drop.
    bed.ask()
    assert await bed.worker.run_once()
    assert [r.embedding for r in engine.requests][-1] == b"learned-embeds"


@pytest.mark.parametrize("damage", ["garbage", "other width", "nan"])
def test_the_engine_reports_an_unusable_cached_embedding_with_its_own_code(tiny_backbone, damage):
    from seal_runtime.engine import StickerEngine

    width = tiny_backbone.text_encoder.get_input_embeddings().weight.shape[1]
    if damage == "garbage":
        data = b"\x00\x01 not safetensors"
    elif damage == "other width":
        data = embedding_to_bytes(torch.zeros(3, width * 2), {})
    else:
        data = embedding_to_bytes(torch.full((3, width), float("nan")), {})
    with pytest.raises(RuntimeJobError) as info:
        StickerEngine(tiny_backbone)._cached_vectors(data, None)
    assert info.value.code == BAD_CACHED_CONCEPT
    good = embedding_to_bytes(torch.zeros(3, width), {"model_id": tiny_backbone.model_id})
    assert StickerEngine(tiny_backbone)._cached_vectors(good, None).shape == (3, width)
