"""`stickerbot run`: the whole bot from one config — runtime child, adapters, worker, schedule.

    stickerbot run                 # spawns the runtime on runtime_url's port, starts general.adapters
    stickerbot run --no-runtime    # the runtime runs elsewhere (another container, another box)

What runs in this process:
- `RuntimeSupervisor` keeps the SEAL runtime child alive: it checks `/healthz` every few
  seconds, and when the child exits or stops answering it kills it and starts a new one,
  waiting 1, 2, 4 … 60 s between quick deaths (reset after a minute of health). Jobs in
  flight when it dies are retried by the worker (see bot/job_worker.py). Every launch gets
  a fresh secret, which the runtime requires, and the bot talks only to the process it
  started (adapters/cli/runtime_guard.py): not to one that took the port meanwhile.
- The adapters named in `general.adapters` (telegram, discord) take commands; they do not
  run their own workers. One `JobWorker` runs the queue for all of them and delivers
  through a sink that routes each job to its platform's adapter.
- Scaled out (`general.queue = "redis"`) no runtime child is started (the runtimes run
  beside `stickerbot gpu-worker` processes, on any box), and a `JobWorkerPool` runs one
  JobWorker per free GPU slot, ids `<worker id>`, `<worker id>-1`, … (bot/worker_pool.py).
- The APScheduler housekeeping of `bot.retention` (quota reset, retention, timeout sweep).
- `GET /healthz` on 127.0.0.1:`general.health_port` for container health checks: 200 while
  the worker runs ("degraded" while the runtime is down), 503 when the worker died.

SIGTERM/SIGINT: the worker stops taking jobs and finishes the one in hand within
`--grace` seconds; past that the job is handed back to the queue without costing an
attempt. Then the adapters stop, then the runtime child. A SIGKILL skips all that, and
nothing is lost either: leases expire, and the next start reclaims its own jobs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlparse

from aiohttp import web

from adapters.cli.chat_adapters import PLATFORMS, chat_bot_factory, start_error_describer
from adapters.cli.runtime_child import runtime_command, spawn_child
from adapters.cli.runtime_guard import ChildRuntimeClient, fresh_secret
from bot.delivery import DeliverySink, RoutingSink
from bot.settings import Settings
from seal_runtime.api.client import RuntimeClient
from seal_runtime.api.protocol import RuntimeJobError
from seal_runtime.api.redis_client import RedisRuntimeClient

log = logging.getLogger("stickerbot.supervisor")

DEFAULT_WORKER_ID = "stickerbot-run"


class SupervisorError(Exception):
    """A configuration problem that stops `stickerbot run` before it starts."""


# -- the runtime ---------------------------------------------------------------------------------
def runtime_client(settings: Settings) -> RuntimeClient | RedisRuntimeClient:
    """The bot's way to the runtime: the one at general.runtime_url (embedded), or the GPU
    workers behind Redis (general.queue = "redis")."""
    if settings.general.queue == "redis":
        try:
            return RedisRuntimeClient(settings.general.redis_url, ca_file=settings.general.redis_ca_file,
                                      job_timeout_s=settings.limits.job_timeout_s)
        except ValueError as exc:
            raise SupervisorError(str(exc)) from None
    return RuntimeClient(settings.general.runtime_url, secret=settings.runtime.shared_secret,
                         job_timeout_s=settings.limits.job_timeout_s)


@dataclass
class RuntimeStatus:
    pid: int | None = None
    healthy: bool = False
    starts: int = 0
    restarts: int = 0
    last_exit_code: int | None = None
    last_health: dict = field(default_factory=dict)
    last_start_s: float = 0.0  # how long the last start took until healthy

    def as_dict(self) -> dict:
        return {"pid": self.pid, "healthy": self.healthy, "starts": self.starts, "restarts": self.restarts,
                "last_exit_code": self.last_exit_code, "model_id": self.last_health.get("model_id"),
                "last_start_s": round(self.last_start_s, 3)}


HUNG_JOB_GRACE_S = 120.0

class RuntimeSupervisor:
    """Spawns the runtime with `spawn(secret)`, watches it, restarts it with backoff. Each
    launch gets a fresh secret, handed to the child by `spawn` and to `client`, which
    talks only to the child it was attached to (adapters/cli/runtime_guard.py)."""

    def __init__(self, spawn: Callable[[str], subprocess.Popen], client: ChildRuntimeClient, *,
                 check_interval_s: float = 5.0, failures_before_restart: int = 3, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0, healthy_reset_s: float = 60.0, start_timeout_s: float = 600.0,
                 stop_timeout_s: float = 10.0, hung_job_s: float | None = None) -> None:
        self.spawn = spawn
        self.client = client
        self.check_interval_s = check_interval_s
        self.failures_before_restart = failures_before_restart
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_reset_s = healthy_reset_s
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        # A job the runtime still reports as running after this long is stuck (a driver call
        # that never returns): the worker gave up on it at its job timeout and the runtime
        # did not stop it at its next step, so only a restart frees the GPU. None: never.
        self.hung_job_s = hung_job_s
        self.status = RuntimeStatus()
        self.process: subprocess.Popen | None = None
        self.backoffs: list[float] = []  # every wait before a restart, for tests and the bench
        self.became_healthy = asyncio.Event()
        self._healthy_at: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.backoff_initial_s
        try:
            while not stop.is_set():
                await self._start()
                reason = await self._watch(stop)
                if stop.is_set():
                    break
                await self._kill()
                if self._healthy_at is not None and time.monotonic() - self._healthy_at >= self.healthy_reset_s:
                    backoff = self.backoff_initial_s  # it ran fine for a while: not a crash loop
                log.warning("runtime down; restarting", extra={"reason": reason, "exit_code": self.status.last_exit_code,
                                                               "restart_in_s": backoff})
                self.backoffs.append(backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(self.backoff_max_s, backoff * 2)
                self.status.restarts += 1
        finally:
            await self._stop_gracefully()

    async def _start(self) -> None:
        secret = fresh_secret()
        self.process = self.spawn(secret)
        await self.client.attach(self.process.pid, secret)
        self.status.pid = self.process.pid
        self.status.starts += 1
        self.status.healthy = False
        self._healthy_at = None
        self.became_healthy.clear()
        log.info("runtime started", extra={"pid": self.process.pid})

    async def _watch(self, stop: asyncio.Event) -> str:
        """Returns why the runtime has to be restarted (or "" when asked to stop)."""
        assert self.process is not None
        started = time.monotonic()
        failures = 0
        interval = 0.25  # poll quickly until the first healthy answer
        while not stop.is_set():
            code = self.process.poll()
            if code is not None:
                self.client.detach()
                self.status.last_exit_code = code
                self.status.healthy = False
                return f"exited with code {code}"
            try:
                self.status.last_health = await self.client.health()
            except RuntimeJobError as exc:
                if failures == 0:
                    log.warning("runtime health check failed", extra={"pid": self.process.pid, "error": str(exc)})
                failures += 1
                if self.status.healthy and failures >= self.failures_before_restart:
                    self.status.healthy = False
                    return f"no answer to {failures} health checks"
                if not self.status.healthy and time.monotonic() - started > self.start_timeout_s:
                    return f"not healthy {self.start_timeout_s:.0f} s after start"
            else:
                failures = 0
                hung = self._hung_job(self.status.last_health)
                if hung:
                    self.status.healthy = False
                    return hung
                if not self.status.healthy:
                    self.status.healthy = True
                    self._healthy_at = time.monotonic()
                    self.status.last_start_s = self._healthy_at - started
                    self.became_healthy.set()
                    log.info("runtime healthy", extra={"pid": self.process.pid,
                                                       "start_s": round(self.status.last_start_s, 2)})
                    interval = self.check_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
        return ""

    def _hung_job(self, health: dict) -> str:
        """Why the runtime counts as hung ("" when it does not): /healthz names its running
        job and that job's age (seal_runtime/server.py)."""
        running = health.get("running") if isinstance(health, dict) else None
        if self.hung_job_s is None or not isinstance(running, dict):
            return ""
        age = float(running.get("age_s") or 0.0)
        if age <= self.hung_job_s:
            return ""
        log.error("runtime job hung; restarting the runtime",
                  extra={"pid": self.process.pid if self.process else None, "job_id": running.get("job_id"),
                         "stage": running.get("stage"), "age_s": round(age, 1), "limit_s": self.hung_job_s})
        return f"job {running.get('job_id')} running for {age:.0f} s (limit {self.hung_job_s:.0f} s)"

    async def _kill(self) -> None:
        self.client.detach()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.process.wait)

    async def process_exited(self) -> int:
        """Wait for the current child to exit (tests and benchmarks kill it)."""
        assert self.process is not None
        return await asyncio.get_running_loop().run_in_executor(None, self.process.wait)

    async def _stop_gracefully(self) -> None:
        self.client.detach()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, process.wait),
                                   timeout=self.stop_timeout_s)
        except TimeoutError:
            process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.wait)
        self.status.healthy = False


# -- adapters ------------------------------------------------------------------------------------
class AdapterHandle(Protocol):
    """What `stickerbot run` needs of an adapter: its platform name, a sink for finished
    jobs, and start/stop of its intake (no worker of its own)."""

    platform: str
    sink: DeliverySink

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _ChatBotHandle:
    """Wraps an adapter bot class shaped like `adapters.telegram.app.TelegramBot`."""

    def __init__(self, platform: str, bot) -> None:
        self.platform = platform
        self.bot = bot

    @property
    def sink(self) -> DeliverySink:
        return self.bot.sink

    async def start(self) -> None:
        await self.bot.start(run_worker=False)

    async def stop(self) -> None:
        await self.bot.stop()


def _chat_adapter(platform: str, settings: Settings, db, client: RuntimeClient) -> AdapterHandle:
    """One chat adapter without a worker of its own (the supervisor runs the one worker)."""
    try:
        make_bot = chat_bot_factory(settings, platform)
    except ImportError as exc:
        raise SupervisorError(f"the {platform} adapter is not available in this build ({exc})") from None
    return _ChatBotHandle(platform, make_bot(db, client, worker_id=f"{platform}-unused"))


ADAPTER_FACTORIES: dict[str, Callable[[Settings, object, RuntimeClient], AdapterHandle]] = {
    platform: functools.partial(_chat_adapter, platform) for platform in PLATFORMS
}


# -- the whole bot ---------------------------------------------------------------------------
class Supervisor:
    def __init__(self, settings: Settings, *, config_path: str | None = None, run_runtime: bool = True,
                 adapters: list[AdapterHandle] | None = None,
                 runtime_spawn: Callable[[str], subprocess.Popen] | None = None,
                 worker_id: str = DEFAULT_WORKER_ID, grace_s: float = 30.0, health_port: int | None = None,
                 runtime_options: dict | None = None, idle_sleep: float = 0.2) -> None:
        self.settings = settings
        self.config_path = config_path
        self.run_runtime = run_runtime
        self.adapters = adapters
        self.runtime_spawn = runtime_spawn
        self.worker_id = worker_id
        self.grace_s = grace_s
        self.health_port = settings.general.health_port if health_port is None else health_port
        self.runtime_options = runtime_options or {}
        self.idle_sleep = idle_sleep
        self.runtime: RuntimeSupervisor | None = None
        self.pool = None
        self.client: RuntimeClient | RedisRuntimeClient | None = None
        self.worker_task: asyncio.Task | None = None
        self.db = None
        self.started = asyncio.Event()

    def _spawn_for_settings(self) -> Callable[[], subprocess.Popen]:
        url = urlparse(self.settings.general.runtime_url)
        from seal_runtime.server import is_loopback

        if not is_loopback(url.hostname or ""):
            raise SupervisorError(f"general.runtime_url {self.settings.general.runtime_url} is not on this machine: "
                                  "start the runtime there and use `stickerbot run --no-runtime`")
        port = url.port or 80
        return lambda secret: spawn_child(runtime_command(port, self.config_path),
                                          {"STICKERBOT_RUNTIME__SHARED_SECRET": secret})

    @property
    def worker(self):
        """The first job worker (the only one when embedded)."""
        return self.pool.workers[0] if self.pool is not None and self.pool.workers else None

    async def run(self, stop: asyncio.Event) -> int:
        from bot.job_worker import JobWorker
        from bot.retention import build_scheduler
        from bot.worker_pool import JobWorkerPool, worker_id_of
        from storage.database import open_database

        settings = self.settings
        scaled = settings.general.queue == "redis"
        spawn = None
        if self.run_runtime and not scaled:  # scaled out, the runtimes run beside the GPU workers
            spawn = self.runtime_spawn or self._spawn_for_settings()
        self.db = db = open_database(settings.general.database)
        client: RuntimeClient | RedisRuntimeClient
        if spawn is not None:  # our own child: its secret is made per launch, and only it is talked to
            client = ChildRuntimeClient(settings.general.runtime_url, job_timeout_s=settings.limits.job_timeout_s)
        else:
            client = runtime_client(settings)
        self.client = client
        adapters = self.adapters
        if adapters is None:
            names = settings.general.adapters
            if not names:
                raise SupervisorError("no adapters configured: set general.adapters (e.g. [\"telegram\"]) "
                                      "or STICKERBOT_GENERAL__ADAPTERS=telegram")
            unknown = [n for n in names if n not in ADAPTER_FACTORIES]
            if unknown:
                raise SupervisorError(f"unknown adapters {unknown}; known: {sorted(ADAPTER_FACTORIES)}")
            adapters = [ADAPTER_FACTORIES[name](settings, db, client) for name in names]
        sink = RoutingSink({a.platform: a.sink for a in adapters})
        platforms = tuple(a.platform for a in adapters)

        def make_worker(index: int) -> JobWorker:
            # Worker 0 shares the adapters' connection; each other one has its own.
            own = db if index == 0 else open_database(settings.general.database)
            return JobWorker(own, settings, client, sink, worker_id=worker_id_of(self.worker_id, index),
                             platforms=platforms)

        def release(worker: JobWorker) -> None:
            if worker.db is not db:
                worker.db.close()

        if scaled and not settings.general.gpu_jobs:
            assert isinstance(client, RedisRuntimeClient)
            self.pool = pool = JobWorkerPool(make_worker, capacity=client.capacity, release=release)
        else:
            self.pool = pool = JobWorkerPool(make_worker, size=settings.general.gpu_jobs if scaled else 1,
                                             release=release)
        runtime_stop = asyncio.Event()
        runtime_task = None
        if spawn is not None:
            assert isinstance(client, ChildRuntimeClient)
            # Past the worker's own timeout plus a grace, a job still running is stuck.
            options = {"hung_job_s": settings.limits.job_timeout_s + HUNG_JOB_GRACE_S, **self.runtime_options}
            self.runtime = RuntimeSupervisor(spawn, client, **options)
            runtime_task = asyncio.create_task(self.runtime.run(runtime_stop), name="runtime-supervisor")
        scheduler = build_scheduler(db, settings)
        health_runner = await self._serve_health()
        started_adapters: list[AdapterHandle] = []
        worker_stop = asyncio.Event()
        try:
            pool.prepare()  # first: a clash of worker ids stops the start before any adapter runs
            for adapter in adapters:
                await adapter.start()
                started_adapters.append(adapter)
            scheduler.start()
            self.worker_task = asyncio.create_task(pool.run(worker_stop, idle_sleep=self.idle_sleep),
                                                   name="job-workers")
            self.started.set()
            log.info("stickerbot running", extra={"adapters": ",".join(a.platform for a in adapters),
                                                  "runtime": "child" if spawn else client.base_url})
            stop_wait = asyncio.create_task(stop.wait())
            await asyncio.wait({stop_wait, self.worker_task}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            if self.worker_task.done() and not stop.is_set():
                log.error("the job workers stopped unexpectedly", extra={"error": repr(self.worker_task.exception())})
                return 1
            return 0
        finally:
            log.info("stopping: finishing the job in hand", extra={"grace_s": self.grace_s})
            worker_stop.set()
            if self.worker_task is not None and not self.worker_task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self.worker_task), timeout=self.grace_s)
                except TimeoutError:
                    self.worker_task.cancel()  # the jobs in hand go back to the queue, attempts not counted
                    await asyncio.gather(self.worker_task, return_exceptions=True)
                    log.warning("grace over: the jobs in hand were requeued")
            with contextlib.suppress(Exception):
                scheduler.shutdown(wait=False)
            for adapter in reversed(started_adapters):
                try:
                    await adapter.stop()
                except Exception:
                    log.exception("adapter did not stop cleanly", extra={"platform": adapter.platform})
            runtime_stop.set()
            if runtime_task is not None:
                await asyncio.gather(runtime_task, return_exceptions=True)
            if health_runner is not None:
                await health_runner.cleanup()
            await client.close()
            db.close()

    # -- health ----------------------------------------------------------------------------------
    def health(self) -> tuple[int, dict]:
        from storage import jobs

        worker_alive = self.worker_task is not None and not self.worker_task.done()
        runtime_ok = self.runtime.status.healthy if self.runtime else None
        if self.runtime:
            runtime = self.runtime.status.as_dict()
        elif isinstance(self.client, RedisRuntimeClient) and self.pool is not None:
            runtime = {"redis": self.client.base_url, "gpu_slots": self.pool.offered,
                       "job_workers": len(self.pool.slots)}
            runtime_ok = self.pool.offered != 0
        else:
            runtime = {"external": self.settings.general.runtime_url}
        counters = self.pool.counters if self.pool is not None else {}
        body = {
            "status": "ok" if worker_alive and runtime_ok is not False else ("degraded" if worker_alive else "down"),
            "worker": {"alive": worker_alive, "id": self.worker_id, **counters},
            "runtime": runtime,
            "queue": jobs.count_active(self.db) if self.db is not None else None,
        }
        return (200 if worker_alive else 503), body

    async def _serve_health(self) -> web.AppRunner | None:
        if not self.health_port:
            return None

        async def healthz(request: web.Request) -> web.Response:
            status, body = self.health()
            return web.json_response(body, status=status)

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.health_port).start()
        except OSError as exc:
            log.warning("health endpoint not started", extra={"port": self.health_port, "error": str(exc)})
            await runner.cleanup()
            return None
        return runner


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def run(args, settings: Settings) -> int:
    """`stickerbot run` (wired in adapters/cli/commands.py)."""

    async def main() -> int:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        supervisor = Supervisor(settings, config_path=getattr(args, "config", None),
                                run_runtime=not args.no_runtime, worker_id=args.worker_id, grace_s=args.grace)
        return await supervisor.run(stop)

    from bot.worker_identity import WorkerIdClash

    try:
        return asyncio.run(main())
    except (SupervisorError, WorkerIdClash) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        known = describe_start_error(exc, settings)
        if known is None:
            raise  # a bug: its traceback goes to stderr, secrets redacted (bot.log_format)
        print(f"error: {known[1]}", file=sys.stderr)
        return known[0]


def describe_start_error(exc: BaseException, settings: Settings) -> tuple[int, str] | None:
    """What the configured adapters know about a start-up failure (a rejected token, an
    unreachable platform), as (exit code, one line)."""
    for name in settings.general.adapters:
        known = start_error_describer(name)(exc, settings) if name in PLATFORMS else None
        if known is not None:
            return known
    return None
