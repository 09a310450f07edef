"""`stickerbot` — the one place that wires adapters, bot, storage and the runtime together."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from bot.log_format import configure_logging, install_redacting_output, register_secret
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("stickerbot")

ASSETS = Path(__file__).parents[1] / "assets"
SAMPLE_REFERENCE = ASSETS / "sample_reference.png"
DEMO_PROMPTS = ("happy waving beach", "sad sitting night sky", "love thumbs up close up")


def _settings(args) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    from urllib.parse import urlsplit

    redis_password = urlsplit(settings.general.redis_url).password
    for secret in (settings.telegram.token, settings.discord.token, settings.runtime.shared_secret, redis_password):
        register_secret(secret)
    return settings


# -- runtime -----------------------------------------------------------------------------------
def cmd_runtime(args) -> int:
    from seal_runtime.server import serve

    settings = _settings(args)
    runtime = replace(settings.runtime, host=args.host or settings.runtime.host, port=args.port or settings.runtime.port)
    serve(runtime)
    return 0


# -- gpu-worker --------------------------------------------------------------------------------
def cmd_gpu_worker(args) -> int:
    """One GPU worker: jobs from Redis to the runtime beside it (seal_runtime/gpu_worker.py)."""
    from seal_runtime.gpu_worker import GpuWorker, serve

    settings = _settings(args)
    try:
        worker = GpuWorker(args.redis or settings.general.redis_url, args.runtime or settings.general.runtime_url,
                           secret=settings.runtime.shared_secret,
                           ca_file=args.redis_ca_file or settings.general.redis_ca_file, worker_id=args.id,
                           slots=args.slots, job_timeout_s=settings.limits.job_timeout_s,
                           max_tries=args.max_tries or settings.limits.job_attempts, grace_s=args.grace,
                           job_lease_s=args.job_lease)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return serve(worker)


# -- config ------------------------------------------------------------------------------------
def cmd_config(args) -> int:
    settings = _settings(args)
    print(json.dumps(settings.redacted(), indent=2, default=list))
    return 0


# -- demo / chat -------------------------------------------------------------------------------
class ConsoleError(Exception):
    """What the console reports as one line and an exit code: the console is the operator's
    own, so it never shows a traceback (`--verbose` logs the details)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _run_console(args, main) -> int:
    """`asyncio.run(main)` for demo and chat: every failure becomes one `error:` line."""
    from bot.errors import UserError

    try:
        return asyncio.run(main)
    except ConsoleError as exc:
        message, code = str(exc), exc.exit_code
    except UserError as exc:
        message, code = exc.user_message, 2
    except Exception as exc:
        if args.verbose:
            log.exception("console command failed")
        message, code = f"{type(exc).__name__}: {exc}" + ("" if args.verbose else " (--verbose shows more)"), 1
    print(f"error: {message}", file=sys.stderr)
    return code


async def _with_local_runtime(settings: Settings, config_path, body, out_dir: Path, quiet: bool = False):
    """Run `body(service, client, make_worker)` with a private runtime child process on a
    free port. `quiet` keeps routine logs of both processes off the console: the runtime's
    output goes to `out_dir`/runtime.log."""
    from adapters.cli.runtime_child import (
        free_port,
        last_error_line,
        spawn_runtime,
        stop_runtime,
        wait_healthy,
    )
    from adapters.cli.runtime_guard import ChildRuntimeClient, fresh_secret
    from bot.job_worker import JobWorker
    from bot.service import StickerService
    from seal_runtime.api.protocol import RuntimeJobError
    from storage.database import open_database

    port = free_port()
    started = time.perf_counter()
    log_path = out_dir / "runtime.log" if quiet else None
    secret = fresh_secret()  # a private runtime: only this process may use it
    child_env = {"STICKERBOT_RUNTIME__SHARED_SECRET": secret,
                 **({"STICKERBOT_GENERAL__LOG_LEVEL": "WARNING"} if quiet else {})}
    process = spawn_runtime(port, config_path, extra_env=child_env, log_path=log_path)
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
    client = ChildRuntimeClient(f"http://127.0.0.1:{port}")
    await client.attach(process.pid, secret)
    try:
        try:
            health = await wait_healthy(client, process)
        except RuntimeJobError as exc:
            cause = (last_error_line(log_path) if log_path else None) or str(exc)
            raise ConsoleError(f"the runtime did not start: {cause}" + (f" (its log: {log_path})" if log_path else ""))
        print(f"runtime ready in {time.perf_counter() - started:.1f}s: model {health['model_id']} on {health['device']}")
        db = open_database(settings.general.database)
        service = StickerService(db, settings)
        return await body(service, client, lambda sink: JobWorker(db, settings, client, sink, worker_id="console"))
    finally:
        await client.close()
        stop_runtime(process)


def _operator_limits(settings: Settings) -> Settings:
    """The demo is the operator's own: no per-user rate limit, queue cap or daily quota."""
    limits = replace(settings.limits, requests_per_minute=0, user_queue_cap=0, setrefs_per_hour=0,
                     daily_quota=1_000_000_000)
    return replace(settings, limits=limits)


def cmd_demo(args) -> int:
    from adapters.console import ConsoleSink
    from bot.errors import UserError
    from bot.image_input import load_reference_image
    from bot.messages import UserRef

    settings = _operator_limits(_settings(args))
    out_dir = Path(args.out or settings.general.out_dir)
    if settings.general.database == Settings().general.database:
        # The demo keeps its own database next to its output, apart from a real bot's.
        settings = replace(settings, general=replace(settings.general, database=str(out_dir / "demo.sqlite")))
    reference_path = Path(args.reference) if args.reference else SAMPLE_REFERENCE
    try:
        reference = reference_path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read reference {reference_path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:  # check the picture before starting the runtime: a bad file fails fast
        load_reference_image(reference, max_bytes=settings.limits.max_upload_bytes,
                             max_pixels=settings.limits.max_upload_pixels)
    except UserError as exc:
        print(f"error: {reference_path}: {exc.user_message}", file=sys.stderr)
        return 2
    user = UserRef("console", "demo", "Demo user")
    sink = ConsoleSink(out_dir)

    async def body(service, client, make_worker):
        try:
            saved = service.set_reference(user, reference)
        except UserError as exc:
            raise ConsoleError(f"{reference_path}: {exc.user_message}", 2) from None
        print(f"reference {reference_path} saved" + ("".join(f"; {n}" for n in saved.notes)))
        worker = make_worker(sink)
        made: list[tuple[str, Path]] = []
        for prompt in args.prompts or DEMO_PROMPTS:
            queued = service.request_sticker(user, prompt, chat={"console": True}, seed=args.seed)
            print(f"/mysticker {prompt}")
            job = await _run_until_settled(worker, service.db, queued.job_id)
            if job is None or job.state != "done":
                # Failed (sink.failed printed the user's message), or forgotten meanwhile.
                print(f"  job failed after {job.attempts if job else '?'} tries: "
                      f"{(job.error if job else 'the job is gone') or 'no result'}")
                return 1
            timings = {**(job.result or {}).get("timings", {}), **worker.last_timings}
            if (job.result or {}).get("adapted"):
                print(f"  learned the character in {timings.get('adapt_s', 0):.1f}s "
                      f"({timings.get('adapt_step_s', 0) * 1000:.0f} ms/step)")
            else:
                print("  embedding cache hit: adaptation skipped")
            print(f"  generated in {timings.get('generate_s', 0):.2f}s, total {timings.get('total_s', 0):.2f}s, "
                  f"bot overhead {timings.get('bot_overhead_s', 0) * 1000:.1f} ms")
            made += [(prompt, path) for path in sink.delivered.get(queued.job_id, [])]
        from adapters.cli.contact_sheet import write_contact_sheet

        print(f"contact sheet: {write_contact_sheet(out_dir / 'contact_sheet.png', reference, made)}")
        return 0

    return _run_console(args, _with_local_runtime(settings, args.config, body, out_dir, quiet=not args.verbose))


async def _run_until_settled(worker, db, job_id: str):
    """Work until this job is done or failed, waiting out retry backoffs; its final row."""
    from storage import jobs
    from storage.records import FINAL_STATES

    while True:
        job = jobs.get_job(db, job_id)
        if job is None or job.state in FINAL_STATES:
            return job
        if not await worker.run_once():
            await asyncio.sleep(0.2)


def cmd_chat(args) -> int:
    from adapters.console import ConsoleSession, ConsoleSink
    from bot.messages import UserRef
    from bot.service import help_text

    settings = _settings(args)
    out_dir = Path(args.out or settings.general.out_dir)
    sink = ConsoleSink(out_dir)

    async def body(service, client, make_worker):
        session = ConsoleSession(service, UserRef("console", args.user, args.user), sink.out_dir)
        worker = make_worker(sink)
        print(help_text().splitlines()[0] + " Type /help for commands, Ctrl-D to quit.")
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, _read_line)
            if line is None:
                return 0
            reply = session.handle(line)
            if reply:
                print(reply)
            while await worker.run_once():
                pass

    return _run_console(args, _with_local_runtime(settings, args.config, body, out_dir, quiet=not args.verbose))


def _read_line() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None


# -- telegram / discord ------------------------------------------------------------------------
def _serve_chat_bot(settings: Settings, make_bot, describe_error) -> int:
    """Run one chat adapter and its job worker until SIGINT/SIGTERM; the runtime runs separately.
    `describe_error(exc)` turns the platform's start-up failures (bad token, unreachable API)
    into (exit code, message), or None for errors it does not know."""
    from adapters.cli.supervisor import runtime_client
    from bot.worker_identity import WorkerIdClash
    from seal_runtime.api.protocol import RuntimeJobError
    from storage.database import open_database

    async def serve() -> int:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        db = open_database(settings.general.database)
        client = runtime_client(settings)
        try:
            try:
                await client.health()
            except RuntimeJobError:
                log.warning("the SEAL runtime is not reachable yet; stickers wait in the queue until it is",
                            extra={"runtime_url": client.base_url})
            await make_bot(db, client).serve(stop)
        except WorkerIdClash as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            known = describe_error(exc)
            if known is None:
                raise
            print(f"error: {known[1]}", file=sys.stderr)
            return known[0]
        finally:
            await client.close()
        return 0

    return asyncio.run(serve())


def _cmd_chat_bot(args, platform: str) -> int:
    from adapters.cli.chat_adapters import chat_bot_factory, start_error_describer

    settings = _settings(args)
    make_bot = chat_bot_factory(settings, platform)
    describe = start_error_describer(platform)
    return _serve_chat_bot(settings, make_bot, lambda exc: describe(exc, settings))


def cmd_telegram(args) -> int:
    """Run the Telegram bot (long polling) and its job worker."""
    return _cmd_chat_bot(args, "telegram")


def cmd_discord(args) -> int:
    """Run the Discord bot (gateway + slash commands) and its job worker."""
    return _cmd_chat_bot(args, "discord")


# -- run / backup -----------------------------------------------------------------------------
def cmd_run(args) -> int:
    """Runtime child + configured adapters + one job worker + housekeeping (adapters/cli/supervisor.py)."""
    from adapters.cli import supervisor

    return supervisor.run(args, _settings(args))


def cmd_backup(args) -> int:
    from adapters.cli import backup

    return backup.run(args, _settings(args))


def cmd_make_test_model(args) -> int:
    from seal_runtime.models.sd15_architecture import save_sd15_test_model

    folder = save_sd15_test_model(Path(args.path), width=args.width, seed=args.seed)
    print(f"SD-1.5-shaped test model (random weights, width {args.width:g}) written to {folder}; "
          f"try it: STICKERBOT_RUNTIME__MODEL={folder} stickerbot demo")
    return 0


def cmd_export(args) -> int:
    """A user's pack as a file: what /export sends, for operators (PATH is theirs to name)."""
    from bot.errors import UserError
    from bot.exports.builder import build_export
    from storage import users
    from storage.database import open_database

    settings = _settings(args)
    platform, sep, platform_user_id = args.user.partition(":")
    if not sep or not platform or not platform_user_id:
        print("error: --user takes PLATFORM:ID, e.g. telegram:123456789 or console:me", file=sys.stderr)
        return 2
    db = open_database(settings.general.database)
    try:
        user = users.find_user(db, platform, platform_user_id)
        if user is None:
            print(f"error: no user {args.user} in {settings.general.database}", file=sys.stderr)
            return 1
        try:
            export = build_export(db, settings, user.id, user.display_name or platform_user_id, args.format)
        except UserError as exc:
            print(f"error: {exc.user_message}", file=sys.stderr)
            return 1
    finally:
        db.close()
    path = Path(args.path)
    if path.is_dir():
        path = path / export.name
    path.write_bytes(export.data)
    print(f"wrote {path} ({len(export.data) // 1024} KiB): {export.count} stickers from {export.source}"
          + (f", {export.left_out} left out (over the format's limit)" if export.left_out else ""))
    return 0


# -- train-builtin / bench -------------------------------------------------------------------
def cmd_train_builtin(args) -> int:
    from stickerworld import train_builtin

    return train_builtin.run(args)


def cmd_bench(args) -> int:
    from benchmarks import commands as benchmarks

    return benchmarks.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stickerbot", description="SEAL Sticker Bot")
    parser.add_argument("--config", help="TOML config file (default: $STICKERBOT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="make stickers of the sample character on the builtin model")
    p.add_argument("--reference", help="use this picture instead of the bundled sample")
    p.add_argument("--out", help="output folder (default: general.out_dir)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--verbose", action="store_true", help="show the bot's and the runtime's logs")
    p.add_argument("prompts", nargs="*", help="prompts (default: three examples)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chat", help="interactive console speaking the chat commands")
    p.add_argument("--user", default="me")
    p.add_argument("--verbose", action="store_true", help="show the bot's and the runtime's logs")
    p.add_argument("--out")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("runtime", help="start the SEAL runtime HTTP server (owns the model)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_runtime)

    p = sub.add_parser("gpu-worker", help="take jobs from Redis and run them on the runtime beside this worker "
                                          "(one per GPU; scale-out, general.queue = \"redis\")")
    p.add_argument("--redis", help="redis:// or rediss:// URL (default: general.redis_url; prefer the setting "
                                   "or STICKERBOT_GENERAL__REDIS_URL for a password, command lines are visible)")
    p.add_argument("--runtime", help="this GPU's runtime (default: general.runtime_url)")
    p.add_argument("--redis-ca-file", help="CA certificate that signed Redis's TLS certificate")
    p.add_argument("--id", help="this worker's name in Redis (default: host-port-pid)")
    p.add_argument("--slots", type=int, default=1, help="jobs this runtime takes at once (default 1)")
    p.add_argument("--max-tries", type=int, default=None,
                   help="a job that stops this many workers ends failed (default: limits.job_attempts)")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds the jobs in hand may take to finish on SIGTERM before they go to another worker")
    p.add_argument("--job-lease", type=float, default=10.0,
                   help="seconds after which the job of a worker that died goes to another one (default 10)")
    p.set_defaults(func=cmd_gpu_worker)

    p = sub.add_parser("config", help="print the effective settings (secrets redacted)")
    p.add_argument("--show", action="store_true", default=True)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("train-builtin", help="train the builtin model on StickerWorld")
    from stickerworld import train_builtin

    train_builtin.add_arguments(p)
    p.set_defaults(func=cmd_train_builtin)

    p = sub.add_parser("telegram", help="run the Telegram bot (token from TELEGRAM_BOT_TOKEN or telegram.token_file)")
    p.set_defaults(func=cmd_telegram)

    p = sub.add_parser("discord", help="run the Discord bot (token from DISCORD_BOT_TOKEN or discord.token_file)")
    p.set_defaults(func=cmd_discord)

    p = sub.add_parser("run", help="run the bot: the runtime (restarted if it dies), general.adapters, "
                                   "the job worker and housekeeping, from one config")
    p.add_argument("--no-runtime", action="store_true",
                   help="do not start a runtime child: use the one at general.runtime_url")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds a job in hand may take to finish on SIGTERM before it is requeued")
    p.add_argument("--worker-id", default="stickerbot-run",
                   help="stable id of this process's job worker (unique per running process)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("backup", help="copy the live database to PATH (SQLite online backup API)")
    p.add_argument("path", help="where to write the backup file")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("make-test-model", help="write a small random SD-1.5-shaped diffusers pipeline to PATH "
                                               "(offline; for trying the SD path on a CPU)")
    p.add_argument("path", help="folder to write (a diffusers StableDiffusionPipeline)")
    from seal_runtime.models.sd15_architecture import TEST_MODEL_WIDTH

    p.add_argument("--width", type=float, default=TEST_MODEL_WIDTH, help="channel scale; 1.0 is SD 1.5's size")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_test_model)
    p = sub.add_parser("export", help="write a user's pack as a WhatsApp (.wastickers), Signal or PNG zip file")
    p.add_argument("--user", required=True, help="PLATFORM:ID, e.g. telegram:123456789, discord:42, console:me")
    p.add_argument("--format", required=True, choices=("whatsapp", "signal", "png-zip"))
    p.add_argument("path", help="the file to write (or a folder: the export's own name is used)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="benchmarks that write JSON")
    from benchmarks import commands as benchmarks

    benchmarks.add_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    install_redacting_output()  # before anything can print a token (a traceback included)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.general.log_level, settings.general.log_format)
        return args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
