"""`stickerbot bench telegram --json PATH`: how many commands per second the Telegram adapter
handles, and the latency it adds, against the fake Bot API server with the stub runtime.

The bot runs in this process as in production; the fake Bot API server, the stub runtime
and the simulated users run in a child process, as Telegram's servers and the GPU box are
not on the bot's CPU either (this machine has 2 cores: one each).

Simulated users, each in their own private chat, send a realistic mix of commands
(/mysticker, /status, /help, /mypack). The latency of a command is measured by the fake
server: from the moment the user sent it until the bot's reply arrived, i.e. the long
poll handing it over, PTB's parsing and dispatch, our handler, SQLite and the reply's
HTTP request (over loopback). The fake's own time to answer is included, so the figures
overstate the bot's share rather than understate it. `bot_cpu_ms_per_command` is the
bot process's own CPU time (all its threads) per command: unlike wall-clock latency, other
load on a shared machine does not inflate it much.

- `at_200_per_s`: commands arrive at 200/s (open loop) while the worker runs the queued
  jobs against the stub runtime and delivers the stickers; p50/p99 latency at that load.
- `saturation`: closed loop (each user waits for a reply before the next command): the
  most commands per second the bot layer answers.
- `sticker_path`: /mysticker to sticker received on an empty queue.
- `with_telegram_limits`: the same with Telegram's limits on (30 messages/s overall, about
  one per second per chat): the rate limiter, not the bot, then sets the pace.

The main runs lift the rate limits, to measure the bot rather than Telegram's quota. The
fake server and the stub runtime live in tests/, so this benchmark runs from a source
checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

from benchmarks.fakes import fake_bot_api, stub_runtime
from bot.settings import Settings

MIX = ("/mysticker happy waving beach", "/status", "/help", "/mysticker sad sitting night sky", "/mypack",
       "/status", "/mysticker love thumbs up", "/status")


@dataclass
class Testbed:
    fake: object  # benchmarks.fakes.fake_bot_api.FakeBotAPI
    stub: object  # benchmarks.fakes.stub_runtime.StubRuntime
    bot: object  # adapters.telegram.app.TelegramBot
    settings: Settings

    @property
    def db(self):
        return self.bot.db


def testbed_settings(fake, runtime_url: str, database: str, sections: dict[str, dict]) -> Settings:
    """Default settings pointed at the fake server, with `sections` overriding fields
    (e.g. {"telegram": {"admin_ids": (7,)}, "limits": {"blocklist": ("x",)}})."""
    base = Settings()
    changed = {name: replace(getattr(base, name), **values) for name, values in sections.items()}
    changed["general"] = replace(changed.get("general", base.general), database=database, runtime_url=runtime_url)
    changed["telegram"] = replace(changed.get("telegram", base.telegram), base_url=fake.base_url,
                                  base_file_url=fake.base_file_url)
    return replace(base, **changed)


@contextlib.asynccontextmanager
async def telegram_testbed(directory: str | Path, *, stub_options: dict | None = None, run_worker: bool = True,
                           runtime_url: str | None = None, **sections: dict):
    """The bot wired to a fake Bot API server and a stub runtime (or the runtime at `runtime_url`),
    all on 127.0.0.1. Keyword arguments named after settings sections override their fields."""
    from adapters.telegram.app import TelegramBot
    from seal_runtime.api.client import RuntimeClient
    from storage.database import open_database

    async with fake_bot_api.running_fake_bot_api() as fake, \
            stub_runtime.running_stub_runtime(stub_runtime.StubRuntime(**(stub_options or {}))) as stub:
        settings = testbed_settings(fake, runtime_url or stub.url, str(Path(directory) / "bot.sqlite"), sections)
        db = open_database(settings.general.database)
        client = RuntimeClient(settings.general.runtime_url)
        bot = TelegramBot(settings, fake.token, db, client)
        try:
            async with bot.running(poll_timeout=5, run_worker=run_worker):
                yield Testbed(fake, stub, bot, settings)
        finally:
            await client.close()
            db.conn.close()


def reference_png(size: int = 160) -> bytes:
    """A simple character on a plain background, as a user would send for /setref."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 4, size // 6, size * 3 // 4, size * 5 // 6), fill=(60, 110, 210), outline=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class _Load:
    """Simulated users in private chats; the fake server timestamps what the bot does."""

    def __init__(self, fake, users: int, first_id: int) -> None:
        self.fake = fake
        self.people = [fake_bot_api.TgUser(first_id + i, f"User{i}") for i in range(users)]
        self.waiting: dict[int, list[tuple[int, asyncio.Future]]] = {}
        self.latencies: list[float] = []
        self.replies: dict[str, int] = {}
        self.fake.on_call.append(self._on_call)

    def close(self) -> None:
        self.fake.on_call.remove(self._on_call)

    def _on_call(self, call) -> None:  # O(1) per call, so the fake adds little
        if call.method != "sendMessage":
            return
        queue = self.waiting.get(call.params.get("chat_id"))
        if not queue:
            return
        update_id, future = queue.pop(0)
        self.latencies.append(call.at - self.fake.sent_at[update_id])
        text = call.params.get("text", "")
        kind = "queued" if text.startswith("Queued") else "busy" if "busy" in text else "other"
        self.replies[kind] = self.replies.get(kind, 0) + 1
        if not future.done():
            future.set_result(call)

    async def give_everyone_a_character(self) -> None:
        picture = reference_png()
        for person in self.people:
            self.fake.send_photo(person, picture, caption="/setref")
        for person in self.people:
            await self.fake.wait_reply(person.id, contains="Saved your character", timeout=120)

    def send(self, person, text: str) -> asyncio.Future:
        message = self.fake.send_text(person, text)
        update_id = self.fake.update_id_of_message[(message["chat"]["id"], message["message_id"])]
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(person.id, []).append((update_id, future))
        return future

    def summary(self, commands: int, seconds: float) -> dict:
        return {"users": len(self.people), "commands": commands, "seconds": round(seconds, 3),
                "commands_per_s": round(commands / seconds, 1), "latency_ms": _latency_ms(self.latencies),
                "mysticker_replies": {k: v for k, v in sorted(self.replies.items()) if k != "other"}}


def _latency_ms(values: list[float]) -> dict:
    return {"p50": round(_percentile(values, 50) * 1000, 2), "p90": round(_percentile(values, 90) * 1000, 2),
            "p99": round(_percentile(values, 99) * 1000, 2), "max": round(max(values) * 1000, 2),
            "mean": round(statistics.fmean(values) * 1000, 2)}


async def offered_load(fake, stub, ready, *, rate: float, seconds: float, users: int, first_id: int) -> dict:
    """Open loop: commands arrive at `rate` per second whatever the bot does (many users in
    many chats); latency is measured per command at that load."""
    load = _Load(fake, users, first_id)
    await load.give_everyone_a_character()
    await ready()
    total = int(rate * seconds)
    futures = []
    started = time.perf_counter()
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        futures.append(load.send(load.people[n % users], MIX[n % len(MIX)]))
    await asyncio.wait_for(asyncio.gather(*futures), 120)
    elapsed = time.perf_counter() - started
    load.close()
    return {"offered_per_s": rate, **load.summary(total, elapsed)}


async def saturation(fake, stub, ready, *, users: int, commands_per_user: int, first_id: int) -> dict:
    """Closed loop: every user sends a command, waits for the reply, sends the next. The rate
    this reaches is the most the bot layer answers; latency here is mostly queueing."""
    load = _Load(fake, users, first_id)
    await load.give_everyone_a_character()
    await ready()

    async def one_user(index: int, person) -> None:
        for n in range(commands_per_user):
            await asyncio.wait_for(load.send(person, MIX[(index + n) % len(MIX)]), 120)

    started = time.perf_counter()
    await asyncio.gather(*(one_user(i, p) for i, p in enumerate(load.people)))
    elapsed = time.perf_counter() - started
    load.close()
    return load.summary(users * commands_per_user, elapsed)


async def sticker_path(fake, stub, ready, *, stickers: int, first_id: int) -> dict:
    """/mysticker → sticker received, one at a time on an empty queue: everything the bot does
    for a sticker (job row, worker pick-up, runtime stream, WebP encoding, sendSticker)."""
    person = fake_bot_api.TgUser(first_id, "Solo")
    fake.send_photo(person, reference_png(), caption="/setref")
    await fake.wait_reply(person.id, contains="Saved your character", timeout=60)
    await ready()
    durations = []
    for n in range(stickers):
        message = fake.send_text(person, "/mysticker happy waving beach")
        call = await fake.wait_for("sendSticker", lambda c: c["chat_id"] == person.id, count=n + 1, timeout=60)
        update_id = fake.update_id_of_message[(person.id, message["message_id"])]
        durations.append(call.at - fake.sent_at[update_id])
    return {"stickers": stickers, "stub_runtime_s_per_job": round(stub.step_delay_s * stub.generate_steps, 3),
            "latency_ms": _latency_ms(durations)}


# Simulated users send far more /mysticker than a person would: lift the per-user rate limit and
# daily quota (the queue cap stays: once it is reached, /mysticker answers "busy").
BENCH_LIMITS = {"requests_per_minute": 1_000_000, "daily_quota": 1_000_000, "user_queue_cap": 0,
                "setrefs_per_hour": 0}
SCENARIOS = {"offered_load": offered_load, "saturation": saturation, "sticker_path": sticker_path}
# The stub answers a job in ~1 s (20 sampling steps of 50 ms, like SD-1.5 on a fast GPU); the worker does
# per job what it does in production (stream, store, WebP encoding, sendSticker).
STUB = {"adapt_steps": 2, "generate_steps": 20, "step_delay_s": 0.05}


def _telegram_side(conn) -> None:
    """Child process: the fake Bot API, the stub runtime and the simulated users."""
    import logging

    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with fake_bot_api.running_fake_bot_api() as fake, \
                stub_runtime.running_stub_runtime(stub_runtime.StubRuntime(**STUB)) as stub:
            conn.send({"base_url": fake.base_url, "base_file_url": fake.base_file_url, "token": fake.token,
                       "runtime_url": stub.url})
            while True:
                message = await loop.run_in_executor(None, conn.recv)
                if message is None:
                    return
                name, params = message

                async def ready() -> None:  # set-up done: the bot side starts measuring
                    conn.send("ready")
                    await loop.run_in_executor(None, conn.recv)

                try:
                    conn.send(await SCENARIOS[name](fake, stub, ready, **params))
                except Exception as exc:  # tell the bot side instead of leaving it waiting
                    conn.send({"error": f"{name}: {type(exc).__name__}: {exc}"[:2000]})

    asyncio.run(main())


class _OtherSide:
    """The pipe to the child process, with a wait that notices when the child is gone."""

    def __init__(self, conn, child) -> None:
        self.conn = conn
        self.child = child

    def send(self, message) -> None:
        self.conn.send(message)

    async def receive(self):
        while not self.conn.poll():
            if not self.child.is_alive():
                raise RuntimeError(f"the fake Bot API process exited with code {self.child.exitcode}")
            await asyncio.sleep(0.05)
        message = self.conn.recv()
        if isinstance(message, dict) and "error" in message:
            raise RuntimeError(f"benchmark scenario failed: {message['error']}")
        return message


async def _run_against(side: _OtherSide, database: Path, endpoints: dict, telegram: dict, scenario: str,
                       params: dict) -> dict:
    """Start a fresh bot (new database) in this process, run one scenario on the other side."""
    from adapters.telegram.app import TelegramBot
    from seal_runtime.api.client import RuntimeClient
    from storage.database import open_database

    fake = SimpleNamespace(base_url=endpoints["base_url"], base_file_url=endpoints["base_file_url"])
    settings = testbed_settings(fake, endpoints["runtime_url"], str(database),
                                {"telegram": telegram, "limits": BENCH_LIMITS})
    db = open_database(settings.general.database)
    client = RuntimeClient(settings.general.runtime_url)
    bot = TelegramBot(settings, endpoints["token"], db, client)
    try:
        async with bot.running(poll_timeout=5):
            side.send((scenario, params))
            assert await side.receive() == "ready"
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            side.send("go")
            result = await side.receive()
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
            # The bot's own CPU (all threads, worker and WebP encoding included), which the
            # other processes on a shared machine cannot inflate, unlike wall-clock latency.
            result["bot_cpu_s"] = round(cpu_s, 3)
            if result.get("commands"):
                result["bot_cpu_ms_per_command"] = round(cpu_s / result["commands"] * 1000, 3)
            return result
    finally:
        await client.close()
        db.conn.close()


async def _bench(quick: bool) -> dict:
    import multiprocessing

    rate, seconds = 200.0, (3.0 if quick else 15.0)
    lifted = {"overall_max_rate": 0, "chat_max_rate": 0, "group_max_rate": 0}
    results: dict = {"machine": {"cpus": os.cpu_count()}, "quick": quick, "mix": list(MIX),
                     "setup": "bot in this process; fake Bot API, stub runtime and simulated users in a child process"}
    context = multiprocessing.get_context("spawn")
    conn, child_conn = context.Pipe()
    child = context.Process(target=_telegram_side, args=(child_conn,), daemon=True)
    child.start()
    side = _OtherSide(conn, child)
    try:
        endpoints = await side.receive()
        runs = [  # (result, scenario, Telegram's limits on?, parameters)
            ("sticker_path", "sticker_path", False, {"stickers": 3 if quick else 10, "first_id": 6_000_000}),
            ("at_200_per_s", "offered_load", False, {"rate": rate, "seconds": seconds, "users": 50,
                                                     "first_id": 5_000_000}),
            ("saturation", "saturation", False, {"users": 16, "commands_per_user": 10 if quick else 60,
                                                 "first_id": 7_000_000}),
            ("with_telegram_limits", "saturation", True, {"users": 8, "commands_per_user": 3 if quick else 10,
                                                          "first_id": 8_000_000}),
        ]
        with tempfile.TemporaryDirectory() as directory:
            for key, scenario, limited, params in runs:
                results[key] = await _run_against(side, Path(directory) / f"{key}.sqlite", endpoints,
                                                  {} if limited else lifted, scenario, params)
    finally:
        if child.is_alive():
            conn.send(None)
        child.join(timeout=30)
        if child.is_alive():
            child.terminate()
    at_rate = results["at_200_per_s"]
    results["targets"] = {
        "commands_per_s>=200": results["saturation"]["commands_per_s"] >= 200,
        "keeps_up_at_200_per_s": at_rate["commands_per_s"] >= 195,
        "p99_ms_at_200_per_s<=50": at_rate["latency_ms"]["p99"] <= 50,
    }
    return results


def run(args) -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        results = asyncio.run(_bench(bool(getattr(args, "quick", False))))
    except RuntimeError as exc:
        print(f"bench telegram: {exc}")
        return 1
    text = json.dumps(results, indent=2)
    print(text)
    if getattr(args, "json_path", None):
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(text + "\n")
    return 0
