"""`stickerbot run`'s supervision: the runtime child is restarted when it dies or never
gets healthy, with backoff; health is served; SIGTERM finishes or requeues the job in hand."""

import asyncio
import signal
import sys

import aiohttp
import pytest

from adapters.cli.runtime_child import free_port
from adapters.cli.runtime_guard import ChildRuntimeClient
from adapters.cli.supervisor import RuntimeSupervisor, Supervisor, spawn_child
from benchmarks.bench_reliability import (
    FileAdapter,
    bench_settings,
    character_png,
    read_deliveries,
    worker_command,
)
from benchmarks.fakes.reliability_stub import CrashingStub
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.messages import UserRef
from bot.service import StickerService
from storage import jobs
from storage.database import open_database

FAST = {"check_interval_s": 0.1, "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "stop_timeout_s": 5}


def stub_child(port: int):
    return lambda secret: spawn_child([sys.executable, "-m", "benchmarks.fakes.reliability_stub", "--port", str(port)])


async def wait_for(predicate, timeout=20.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_a_killed_runtime_child_is_restarted_and_healthy_again():
    port = free_port()
    client = ChildRuntimeClient(f"http://127.0.0.1:{port}")
    runtime = RuntimeSupervisor(stub_child(port), client, **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await asyncio.wait_for(runtime.became_healthy.wait(), 20)
        first = runtime.process.pid
        runtime.process.send_signal(signal.SIGKILL)
        await wait_for(lambda: runtime.status.restarts == 1 and runtime.status.healthy)
        assert runtime.process.pid != first and runtime.status.last_exit_code == -signal.SIGKILL
        assert (await client.health())["status"] == "ok"
    finally:
        stop.set()
        await task
        await client.close()
    assert runtime.process.poll() is not None  # stopped with the supervisor


async def test_a_crash_loop_backs_off_exponentially_up_to_the_cap():
    client = ChildRuntimeClient(f"http://127.0.0.1:{free_port()}")
    runtime = RuntimeSupervisor(lambda secret: spawn_child([sys.executable, "-c", "import sys; sys.exit(3)"]), client,
                                **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await wait_for(lambda: len(runtime.backoffs) >= 5)
    stop.set()
    await task
    await client.close()
    assert runtime.backoffs[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert runtime.status.last_exit_code == 3 and not runtime.status.healthy


async def test_a_runtime_that_never_becomes_healthy_is_replaced():
    client = ChildRuntimeClient(f"http://127.0.0.1:{free_port()}")
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    runtime = RuntimeSupervisor(lambda secret: spawn_child(hang), client, start_timeout_s=0.5, **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await wait_for(lambda: runtime.status.starts >= 2)
    hung = runtime.process
    stop.set()
    await task
    await client.close()
    assert hung.poll() is not None  # the replacement was stopped too; nothing is left running


async def test_run_serves_jobs_through_the_adapter_restarts_the_runtime_and_reports_health(tmp_path):
    port, health_port = free_port(), free_port()
    settings = bench_settings(str(tmp_path / "bot.sqlite"), f"http://127.0.0.1:{port}")
    service = StickerService(open_database(settings.general.database), settings)
    user = UserRef("console", "ann")
    service.set_reference(user, character_png(0))
    deliveries = tmp_path / "deliveries.jsonl"
    supervisor = Supervisor(settings, adapters=[FileAdapter(deliveries)], runtime_spawn=stub_child(port),
                            runtime_options=FAST, health_port=health_port, idle_sleep=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        await asyncio.wait_for(supervisor.started.wait(), 20)
        first = service.request_sticker(user, "happy", {}).job_id
        await wait_for(lambda: read_deliveries(deliveries)[first] == 1)
        supervisor.runtime.process.send_signal(signal.SIGKILL)
        await wait_for(lambda: supervisor.runtime.status.restarts == 1)
        second = service.request_sticker(user, "sad", {}).job_id
        await wait_for(lambda: read_deliveries(deliveries)[second] == 1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                assert resp.status == 200
                body = await resp.json()
        assert body["status"] == "ok" and body["runtime"]["restarts"] == 1 and body["worker"]["done"] == 2
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 30) == 0
    assert supervisor.runtime.process.poll() is not None
    assert read_deliveries(deliveries) == {first: 1, second: 1}


@pytest.mark.parametrize("grace,expected", [(0.3, "queued"), (30, "done")], ids=["requeued", "finished"])
async def test_sigterm_finishes_the_job_in_hand_or_requeues_it_without_cost(tmp_path, grace, expected):
    async with running_stub_runtime(CrashingStub(adapt_steps=15, step_delay_s=0.1)) as stub:
        database = tmp_path / "bot.sqlite"
        settings = bench_settings(str(database), stub.url)
        db = open_database(database)
        service = StickerService(db, settings)
        service.set_reference(UserRef("console", "ann"), character_png(0))
        job_id = service.request_sticker(UserRef("console", "ann"), "happy", {}).job_id
        command = worker_command(database, stub.url, tmp_path / "out.jsonl") + ["--grace", str(grace)]
        child = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL)
        await wait_for(lambda: jobs.get_job(db, job_id).state == "adapting")
        child.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(child.wait(), 30) == 0
        job = jobs.get_job(db, job_id)
        assert job.state == expected
        if expected == "queued":
            assert (job.attempts, job.lease_owner) == (0, None)  # handed back, attempt not counted
            assert read_deliveries(tmp_path / "out.jsonl") == {}
        else:
            assert read_deliveries(tmp_path / "out.jsonl") == {job_id: 1}
        db.close()


def test_stickerbot_run_without_adapters_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from adapters.cli.commands import main

    monkeypatch.setenv("STICKERBOT_GENERAL__DATABASE", str(tmp_path / "b.sqlite"))
    monkeypatch.setenv("STICKERBOT_GENERAL__HEALTH_PORT", "0")
    assert main(["run", "--no-runtime"]) == 2
    assert "no adapters configured" in capsys.readouterr().err
    monkeypatch.setenv("STICKERBOT_GENERAL__ADAPTERS", "telegram")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main(["run", "--no-runtime"]) == 2  # no token: a configuration error, not a traceback
    assert "token" in capsys.readouterr().err


HUNG_RUNTIME = r'''
import sys
from aiohttp import web

async def health(request):
    return web.json_response({"status": "ok", "api_version": 2, "model_id": "hung",
                              "running": {"job_id": "job-1", "stage": "adapting", "age_s": float(sys.argv[2])}})

app = web.Application()
app.router.add_get("/healthz", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
'''


@pytest.mark.parametrize(("age_s", "restarted"), [(5.0, False), (31.0, True)])
async def test_a_runtime_whose_job_runs_past_the_hung_limit_is_restarted(age_s, restarted):
    """/healthz names the running job and its age; past `hung_job_s` (the worker's job timeout
    plus a grace under `stickerbot run`) only a restart frees the GPU. Just inside: left alone."""
    port = free_port()
    client = ChildRuntimeClient(f"http://127.0.0.1:{port}")
    runtime = RuntimeSupervisor(lambda secret: spawn_child([sys.executable, "-c", HUNG_RUNTIME, str(port), str(age_s)]),
                                client, hung_job_s=30.0, **FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        if restarted:
            await wait_for(lambda: runtime.status.restarts >= 1)
            assert runtime.backoffs  # it went through the restart path, with backoff
        else:
            await asyncio.wait_for(runtime.became_healthy.wait(), 20)
            for _ in range(10):  # several health checks at check_interval_s, none restarts it
                await asyncio.sleep(FAST["check_interval_s"])
            assert runtime.status.restarts == 0 and runtime.status.healthy
    finally:
        stop.set()
        await task
        await client.close()
