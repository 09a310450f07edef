"""The runtime does not trust its requests (issue #18.7), and stops work nobody waits for:
bounded fields answered with a non-retryable 4xx, a garbled secret is a 401, an oversized
body a 413, a client that goes away stops its job at the next step, quietly. Also what
/healthz says about the running job, and that cache hits go before adaptations."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time

import aiohttp
import pytest

from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.config import (
    AdaptationSettings,
    GenerationSettings,
    RuntimeSettings,
)
from seal_runtime.api.protocol import ProgressEvent, RuntimeJobError
from tests.scripted_engine import ScriptedEngine, finished, serving


def body(prompts=("a sticker of <concept>",), seeds=None, adaptation=None, generation=None) -> dict:
    return {"job_id": "r1", "reference_png": "cmVm", "prompts": list(prompts),
            "seeds": list(range(len(prompts))) if seeds is None else seeds,
            "adaptation": {**dataclasses.asdict(AdaptationSettings(steps=2)), **(adaptation or {})},
            "generation": {**dataclasses.asdict(GenerationSettings()), **(generation or {})}}


BAD_REQUESTS = {
    "a million adaptation steps": body(adaptation={"steps": 1_000_000}),
    "zero steps": body(adaptation={"steps": 0}),
    "a huge batch": body(adaptation={"batch_size": 4096}),
    "a thousand concept tokens": body(adaptation={"num_tokens": 1000}),
    "LoRA rank 100000": body(adaptation={"lora_rank": 100_000}),
    "steps as text": body(adaptation={"steps": "100"}),
    "an unknown method": body(adaptation={"method": "dreambooth-full"}),
    "an unknown adaptation key": body(adaptation={"stepz": 3}),
    "an unknown generation key": body(generation={"sampler": "euler"}),
    "ten thousand sampling steps": body(generation={"steps": 10_000}),
    "500 prompts": body(prompts=["x"] * 500),
    "no prompts": body(prompts=[]),
    "a novel as a prompt": body(prompts=["word " * 1000]),
    "seeds that do not match": body(seeds=[1, 2, 3]),
    "a negative seed": body(seeds=[-1]),
    "not base64": {**body(), "reference_png": "***"},
    "no job id": {k: v for k, v in body().items() if k != "job_id"},
}


@pytest.fixture
async def runtime():
    engine = ScriptedEngine()
    async with serving(engine, RuntimeSettings(shared_secret="s3cret")) as url:
        yield engine, url


async def test_each_out_of_bounds_request_is_a_non_retryable_400_and_never_runs(runtime):
    engine, url = runtime
    async with aiohttp.ClientSession(headers={"X-Seal-Secret": "s3cret"}) as session:
        for name, payload in BAD_REQUESTS.items():
            async with session.post(f"{url}/v1/jobs", json=payload) as resp:
                assert resp.status == 400, name
                answer = await resp.json()
                assert answer["retryable"] is False and answer["error"].startswith("bad job request"), name
        async with session.post(f"{url}/v1/jobs", data=b"{not json") as resp:
            assert resp.status == 400
    assert engine.requests == []


async def test_the_client_reports_a_bad_request_as_not_retryable(runtime):
    from seal_runtime.api.protocol import JobRequest

    _, url = runtime
    client = RuntimeClient(url, secret="s3cret")
    bad = JobRequest("r2", b"ref", ("p",), (0,), dataclasses.asdict(AdaptationSettings()),
                     {**dataclasses.asdict(GenerationSettings()), "sampler": "euler"})
    try:
        with pytest.raises(RuntimeJobError) as info:
            await client.run_job(bad)
    finally:
        await client.close()
    assert not info.value.retryable and "sampler" in str(info.value)


async def test_a_secret_header_that_is_not_utf8_is_refused_with_401(runtime):
    _, url = runtime
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Seal-Secret: \xff\xfe\xc3(\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    status = await reader.readline()
    writer.close()
    assert status.split()[1] == b"401"


async def test_a_body_over_64_mib_is_answered_413(runtime):
    _, url = runtime
    async with aiohttp.ClientSession(headers={"X-Seal-Secret": "s3cret"}) as session:
        payload = b'{"job_id": "big", "reference_png": "' + b"A" * (65 * 2**20) + b'"}'
        async with session.post(f"{url}/v1/jobs", data=payload,
                                headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 413
            assert (await resp.json())["retryable"] is False


async def test_a_client_that_goes_away_stops_its_job_at_the_next_step_quietly(caplog):
    steps_done, stopped = [], threading.Event()

    def slow(request, control):
        try:
            for step in range(1, 1001):
                time.sleep(0.01)
                control.emit(ProgressEvent(request.job_id, "adapting", step, 1000))
                steps_done.append(step)
        finally:
            stopped.set()
        return finished(request, control)

    engine = ScriptedEngine(slow)
    caplog.set_level(logging.INFO, logger="seal_runtime.server")
    async with serving(engine) as url:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/v1/jobs", json=body()) as resp:
                await resp.content.readline()  # queued
                await resp.content.readline()  # started
            # Leaving the block closes the connection mid-job.
        assert await asyncio.to_thread(stopped.wait, 10)
        assert len(steps_done) < 100  # stopped at its next step, not after 1000
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/healthz") as resp:
                health = await resp.json()
    assert health["running"] is None and health["queued"] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert any("client went away" in r.getMessage() for r in caplog.records)


async def test_a_client_timeout_stops_the_job_too():
    stopped = threading.Event()

    def slow(request, control):
        try:
            for step in range(1, 1001):
                time.sleep(0.01)
                control.emit(ProgressEvent(request.job_id, "adapting", step, 1000))
        finally:
            stopped.set()
        return finished(request, control)

    from seal_runtime.api.protocol import JobRequest

    async with serving(ScriptedEngine(slow)) as url:
        client = RuntimeClient(url, job_timeout_s=0.5)
        job = JobRequest("r3", b"ref", ("p",), (0,), dataclasses.asdict(AdaptationSettings()),
                         dataclasses.asdict(GenerationSettings()))
        try:
            with pytest.raises(RuntimeJobError) as info:
                await client.run_job(job)
        finally:
            await client.close()
        assert info.value.retryable
        assert await asyncio.to_thread(stopped.wait, 10)


async def test_healthz_reports_the_running_job_and_its_age():
    release = threading.Event()

    def held(request, control):
        control.emit(ProgressEvent(request.job_id, "adapting", 1, 10))
        release.wait(10)
        return finished(request, control)

    async with serving(ScriptedEngine(held)) as url:
        async with aiohttp.ClientSession() as session:
            job = asyncio.create_task(session.post(f"{url}/v1/jobs", json=body()))
            health = {}
            for _ in range(100):
                async with session.get(f"{url}/healthz") as resp:
                    health = await resp.json()
                if health["running"] and health["running"]["age_s"] >= 0.3:
                    break
                await asyncio.sleep(0.05)
            release.set()
            resp = await job
            await resp.read()
    assert health["running"]["job_id"] == "r1" and health["running"]["stage"] == "adapting"
    assert health["running"]["age_s"] >= 0.3 and health["queued"] == 1


async def test_a_cache_hit_goes_before_queued_adaptations():
    release, order = threading.Event(), []

    def script(request, control):
        order.append(request.job_id)
        if request.job_id == "first":
            release.wait(10)
        return finished(request, control)

    async with serving(ScriptedEngine(script)) as url:
        async with aiohttp.ClientSession() as session:
            async def send(job_id, embedding=None):
                payload = {**body(), "job_id": job_id, "embedding": embedding}
                async with session.post(f"{url}/v1/jobs", json=payload) as resp:
                    await resp.read()

            first = asyncio.create_task(send("first"))
            while not order:
                await asyncio.sleep(0.01)
            adapts = [asyncio.create_task(send(f"adapt-{i}")) for i in range(2)]
            await asyncio.sleep(0.2)
            hit = asyncio.create_task(send("cache-hit", embedding="Y2FjaGVk"))
            await asyncio.sleep(0.2)
            release.set()
            await asyncio.gather(first, *adapts, hit)
    assert order == ["first", "cache-hit", "adapt-0", "adapt-1"]
