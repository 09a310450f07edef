"""How a job's answer travels: binary frames of any realistic size, and every way the stream
can break becomes a retryable RuntimeJobError that says what was being read."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest
from aiohttp import web

from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.api.frames import CONTENT_TYPE, MAX_JOB_BYTES, encode_frame
from seal_runtime.api.protocol import (
    TRANSPORT,
    JobRequest,
    ProgressEvent,
    RuntimeJobError,
)
from tests.scripted_engine import ScriptedEngine, finished, serving


def request(job_id: str = "t1", prompts: int = 1, embedding: bytes | None = None) -> JobRequest:
    return JobRequest(job_id, b"reference", ("a sticker of <concept>",) * prompts, tuple(range(prompts)),
                      dataclasses.asdict(AdaptationSettings(steps=2)), dataclasses.asdict(GenerationSettings()),
                      embedding=embedding)


async def test_tens_of_megabytes_of_results_arrive_whole_with_progress_on_the_way():
    images = tuple(os.urandom(8 * 2**20) for _ in range(4))  # far past aiohttp's 512 KiB line
    lora = os.urandom(3_300_000)  # SD 1.5's rank-4 LoRA is about 3.2 MB
    engine = ScriptedEngine(lambda r, c: finished(r, c, images=images, adapter_weights=lora))
    events, concepts = [], []

    async def on_progress(event):
        events.append(event.stage)

    async def on_concept(concept):
        concepts.append(concept)

    async with serving(engine) as url:
        client = RuntimeClient(url)
        try:
            result = await client.run_job(request(prompts=4), on_progress, on_concept)
        finally:
            await client.close()
    assert result.images_png == images and result.adapter_weights == lora and result.adapted
    assert [c.adapter_weights for c in concepts] == [lora] and result.embedding == concepts[0].embedding
    assert events.count("adapting") == 2 and events.count("generating") == 2


async def test_the_concept_is_handed_over_before_generation_starts():
    order = []

    def script(req, control):
        result = finished(req, control, steps=1)
        return result

    engine = ScriptedEngine(script)

    async def on_progress(event):
        order.append(event.stage)

    async def on_concept(concept):
        order.append("concept")

    async with serving(engine) as url:
        client = RuntimeClient(url)
        try:
            await client.run_job(request(), on_progress, on_concept)
        finally:
            await client.close()
    assert order.index("concept") < order.index("generating")
    assert order.index("adapting") < order.index("concept")


async def test_a_cache_hit_gets_its_embedding_back_without_it_being_sent_again():
    async with serving(ScriptedEngine()) as url:
        client = RuntimeClient(url)
        try:
            result = await client.run_job(request(embedding=b"cached"))
        finally:
            await client.close()
    assert not result.adapted and result.embedding == b"cached"


async def test_a_response_over_the_limit_is_a_retryable_transport_error():
    engine = ScriptedEngine(lambda r, c: finished(r, c, images=(os.urandom(2 * 2**20),)))
    async with serving(engine) as url:
        client = RuntimeClient(url, max_job_bytes=2**20)
        try:
            with pytest.raises(RuntimeJobError) as info:
                await client.run_job(request())
        finally:
            await client.close()
    assert info.value.retryable and info.value.code == TRANSPORT
    assert "t1" in str(info.value) and "larger than" in str(info.value)
    assert MAX_JOB_BYTES == 64 * 2**20


def _broken(kind: str) -> list[bytes]:
    progress = b"".join(ProgressEvent("t1", "queued", 1).to_frame())
    if kind == "truncated part":
        header, *_ = encode_frame({"event": "result", "job_id": "t1"}, [("image", b"x" * 1000)])
        return [progress, header, b"x" * 10]
    if kind == "truncated header":
        return [progress, b'{"event": "res']
    if kind == "not json":
        return [progress, b"<html>502 Bad Gateway</html>\n"]
    if kind == "bad parts":
        return [progress, json.dumps({"event": "result", "parts": [["image", -5]]}).encode() + b"\n"]
    if kind == "line too long":  # an old runtime's one-line result: aiohttp's LineTooLong
        return [progress, b'{"event": "result", "images_png": ["' + b"A" * 700_000 + b'"]}\n']
    if kind == "no result":
        return [progress]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated part", "truncated header", "not json", "bad parts",
                                  "line too long", "no result", "reset"])
async def test_every_broken_stream_is_a_retryable_runtime_job_error_with_context(kind):
    async def handler(http_request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
        await response.prepare(http_request)
        if kind == "reset":
            header, *_ = encode_frame({"event": "result", "job_id": "t1"}, [("image", b"x" * 100_000)])
            await response.write(header + b"x" * 50_000)
            await asyncio.sleep(0.05)
            http_request.transport.abort()  # the runtime died mid-part
            return response
        for chunk in _broken(kind):
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/jobs", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = RuntimeClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        with pytest.raises(RuntimeJobError) as info:
            await client.run_job(request())
    finally:
        await client.close()
        await runner.cleanup()
    assert info.value.retryable, kind
    assert info.value.code == TRANSPORT and "t1" in str(info.value)
