"""The real aiohttp runtime in a subprocess: health, a job with streamed progress, the
cache path, secrets, and bad requests."""

import dataclasses
import io

import aiohttp
import pytest
from PIL import Image

from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.api.protocol import JobRequest, RuntimeJobError
from seal_runtime.server import check_bind
from seal_runtime.api.config import RuntimeSettings
from tests.runtime_helpers import running_runtime


def reference_png() -> bytes:
    image = Image.new("RGBA", (96, 96), (255, 255, 255, 255))
    for x in range(30, 66):
        for y in range(25, 75):
            image.putpixel((x, y), (40, 90, 200, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def job(job_id: str, embedding: bytes | None = None, prompts=("a sticker of <concept>, happy smiling face",)):
    return JobRequest(
        job_id=job_id,
        reference_png=reference_png(),
        prompts=tuple(prompts),
        seeds=tuple(range(len(prompts))),
        adaptation=dataclasses.asdict(AdaptationSettings(steps=3, batch_size=1)),
        generation=dataclasses.asdict(GenerationSettings(steps=3)),
        embedding=embedding,
    )


async def test_job_streams_progress_then_result_and_a_cached_embedding_skips_adaptation():
    async with running_runtime() as (client, _, _):
        health = await client.health()
        assert health["status"] == "ok" and health["model_id"]
        events = []

        async def on_progress(event):
            events.append((event.stage, event.step, event.total))

        first = await client.run_job(job("j1"), on_progress)
        assert first.adapted and first.embedding and len(first.images_png) == 1
        assert ("adapting", 3, 3) in events and ("generating", 3, 3) in events
        assert first.mask_source in ("flood_fill", "alpha", "center_prior")
        image = Image.open(io.BytesIO(first.images_png[0]))
        assert image.mode == "RGBA"

        events.clear()
        second = await client.run_job(job("j2", embedding=first.embedding), on_progress)
        assert not second.adapted
        assert not any(stage == "adapting" for stage, _, _ in events)
        assert second.embedding == first.embedding

        # A bad request is refused as not retryable, and the runtime keeps serving.
        bad = dataclasses.replace(job("j4"), reference_png=b"not an image")
        with pytest.raises(RuntimeJobError) as info:
            await client.run_job(bad)
        assert not info.value.retryable
        assert (await client.health())["jobs_done"] == 2


async def test_secret_is_required_when_configured():
    async with running_runtime(secret="s3cret-value") as (client, _, port):
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/v1/jobs", json={}) as resp:
                assert resp.status == 401
        result = await client.run_job(job("j3"))
        assert result.adapted


def test_runtime_refuses_public_bind_without_secret():
    with pytest.raises(SystemExit, match="shared_secret"):
        check_bind(RuntimeSettings(host="0.0.0.0"))
    check_bind(RuntimeSettings(host="0.0.0.0", shared_secret="x" * 16))
    check_bind(RuntimeSettings(host="127.0.0.1"))
