"""Two processes started with the same worker id would expire each other's leases and run
each other's jobs twice: the second one is refused at start, with a message saying why.
A restart of the same process (after a crash or a SIGTERM) is not a clash."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import pytest

from benchmarks.fakes.fake_bot_api import running_fake_bot_api
from benchmarks.fakes.stub_runtime import running_stub_runtime
from bot.worker_identity import WorkerIdClash, claim_worker_id
from storage.database import open_database

STALE_S = 30.0


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "bot.sqlite")


def someone_else(db, worker_id: str, *, host: str, pid: int, seen_at: float) -> None:
    db.execute(
        "INSERT INTO workers (worker_id, instance, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)",
        [worker_id, "another-instance", host, pid, seen_at, seen_at],
    )


def test_a_live_process_on_this_host_with_the_id_is_a_clash(db):
    parent = os.getppid()  # alive, and not us
    someone_else(db, "w", host=socket.gethostname(), pid=parent, seen_at=1000.0)
    with pytest.raises(WorkerIdClash) as clash:
        claim_worker_id(db, "w", stale_after_s=STALE_S, now=1010.0)
    assert "'w'" in str(clash.value) and f"pid {parent}" in str(clash.value) and "--worker-id" in str(clash.value)


def test_a_dead_process_on_this_host_left_a_stale_claim(db):
    someone_else(db, "w", host=socket.gethostname(), pid=2**22 + 12345, seen_at=1000.0)  # no such pid
    claim_worker_id(db, "w", stale_after_s=STALE_S, now=1001.0)


def test_this_very_process_may_take_its_id_again(db):
    someone_else(db, "w", host=socket.gethostname(), pid=os.getpid(), seen_at=1000.0)  # e.g. pid 1 in a container
    claim_worker_id(db, "w", stale_after_s=STALE_S, now=1001.0)


def test_another_host_counts_as_alive_while_it_keeps_reporting(db):
    someone_else(db, "w", host="other-box", pid=1, seen_at=1000.0)
    with pytest.raises(WorkerIdClash):
        claim_worker_id(db, "w", stale_after_s=STALE_S, now=1000.0 + STALE_S - 1)
    identity = claim_worker_id(db, "w", stale_after_s=STALE_S, now=1000.0 + STALE_S + 1)
    assert identity.refresh(now=1000.0 + STALE_S + 2)


def test_a_released_id_is_free_and_a_taken_over_one_says_so(db):
    first = claim_worker_id(db, "w", stale_after_s=STALE_S, now=1000.0)
    first.release()
    second = claim_worker_id(db, "w", stale_after_s=STALE_S, now=1001.0)
    db.execute("UPDATE workers SET instance = 'usurper' WHERE worker_id = 'w'")
    assert not second.refresh(now=1002.0)


# -- as the operator sees it -------------------------------------------------------------------------
def run_command(tmp_path, fake, stub):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STICKERBOT_", "TELEGRAM_"))}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "STICKERBOT_TELEGRAM__BASE_URL": fake.base_url,
            "STICKERBOT_TELEGRAM__BASE_FILE_URL": fake.base_file_url,
            "STICKERBOT_GENERAL__ADAPTERS": "telegram",
            "STICKERBOT_GENERAL__HEALTH_PORT": "0",
            "STICKERBOT_GENERAL__DATABASE": str(tmp_path / "bot.sqlite"),
            "STICKERBOT_GENERAL__RUNTIME_URL": stub.url,
            "STICKERBOT_GENERAL__LOG_FORMAT": "text",
        }
    )
    return lambda: asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli.commands",
        "run",
        "--no-runtime",
        "--grace",
        "2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_running(process) -> None:
    async def until_running():
        while True:
            line = await process.stderr.readline()
            assert line, "the first process ended"
            if b"stickerbot running" in line:
                return

    await asyncio.wait_for(until_running(), 60)


async def test_a_second_stickerbot_run_with_the_same_worker_id_is_refused_in_one_line(
    tmp_path,
):
    async with running_fake_bot_api() as fake, running_stub_runtime() as stub:
        start = run_command(tmp_path, fake, stub)
        first = await start()
        try:
            await wait_running(first)
            second = await start()
            _, stderr = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 2, stderr.decode()[-2000:]
            text = stderr.decode()
            assert "Traceback" not in text and "'stickerbot-run' is in use" in text and f"pid {first.pid}" in text
            first.send_signal(signal.SIGKILL)  # a crash: the next start is not refused
            await first.wait()
            third = await start()
            await wait_running(third)
            third.send_signal(signal.SIGTERM)
            await asyncio.wait_for(third.communicate(), 60)
            assert third.returncode == 0
        finally:
            if first.returncode is None:
                first.kill()
                await first.wait()
