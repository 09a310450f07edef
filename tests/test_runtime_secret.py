"""The runtime's secret check (seal_runtime/server.py), with every wrong secret, not only none.

The real server app runs in this process (tests/scripted_engine.py) so that each refusal is
seen by its status and body, and so is the job that never reached the engine."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest

from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.config import (
    AdaptationSettings,
    GenerationSettings,
    RuntimeSettings,
)
from seal_runtime.api.protocol import SECRET_HEADER, JobRequest
from seal_runtime.server import check_bind, is_loopback, secret_matches
from tests.scripted_engine import ScriptedEngine, serving

SECRET = "s3cret-Value-for-tests"


def job(job_id: str = "j1") -> JobRequest:
    return JobRequest(job_id, b"reference-png", ("a sticker of <concept>",), (0,),
                      dataclasses.asdict(AdaptationSettings(steps=2)), dataclasses.asdict(GenerationSettings()))


@pytest.fixture
async def guarded():
    engine = ScriptedEngine()
    async with serving(engine, RuntimeSettings(shared_secret=SECRET)) as url:
        yield engine, url


WRONG = {
    "no header": None,
    "an empty header": "",
    "another secret": "not-the-secret-at-all",
    "the secret but one letter's case": SECRET.upper(),
    "all but its last character": SECRET[:-1],
    "the secret and one more character": SECRET + "x",
    "the secret inside a longer value": f"Bearer {SECRET}",
}  # (spaces around a header value are not part of it in HTTP: " secret " is the secret)


async def test_every_wrong_secret_is_refused_401_before_the_engine_sees_the_job(guarded):
    engine, url = guarded
    async with aiohttp.ClientSession() as session:
        for what, secret in WRONG.items():
            headers = {} if secret is None else {SECRET_HEADER: secret}
            async with session.post(f"{url}/v1/jobs", json=job().to_json(), headers=headers) as resp:
                assert resp.status == 401, what
                assert await resp.json() == {"error": "unauthorized", "retryable": False}, what
    assert engine.requests == []


async def test_the_right_secret_gets_the_job_done(guarded):
    engine, url = guarded
    client = RuntimeClient(url, secret=SECRET)
    try:
        result = await client.run_job(job("ok"))
    finally:
        await client.close()
    assert result.job_id == "ok" and [r.job_id for r in engine.requests] == ["ok"]


async def test_health_answers_without_the_secret_and_other_paths_do_not(guarded):
    _, url = guarded
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with session.get(f"{url}/healthz/", headers={SECRET_HEADER: "wrong"}) as resp:
            assert resp.status == 401  # only /healthz itself is open
        async with session.get(f"{url}/no-such-path") as resp:
            assert resp.status == 401  # the secret first: nothing about the app is told


async def test_without_a_configured_secret_any_local_request_is_served():
    engine = ScriptedEngine()
    async with serving(engine, RuntimeSettings()) as url:
        client = RuntimeClient(url, secret="whatever-the-client-sends")
        try:
            assert (await client.run_job(job("open"))).job_id == "open"
        finally:
            await client.close()


def test_secret_matches_compares_the_bytes_that_were_sent():
    assert secret_matches(SECRET, SECRET)
    assert not secret_matches("", SECRET) and not secret_matches(SECRET[:-1], SECRET)
    # aiohttp hands undecodable header bytes over as surrogate escapes: the UTF-8 bytes of
    # "pässword" sent raw still match, a lone surrogate that no bytes make does not crash.
    assert secret_matches("p\udcc3\udca4ssword", "pässword")
    assert not secret_matches("p\ud800ssword", "pässword")


def test_only_loopback_addresses_may_be_bound_without_a_secret():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert is_loopback(host), host
        check_bind(RuntimeSettings(host=host))
    for host in ("0.0.0.0", "::", "192.168.1.20", "example.com", ""):
        assert not is_loopback(host), host
        with pytest.raises(SystemExit) as refused:
            check_bind(RuntimeSettings(host=host))
        assert str(refused.value) == (f"refusing to bind the runtime to {host}: set runtime.shared_secret "
                                      "(STICKERBOT_RUNTIME__SHARED_SECRET) to serve beyond 127.0.0.1")
        check_bind(RuntimeSettings(host=host, shared_secret=SECRET))
