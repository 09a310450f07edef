"""All configuration in one typed object: a TOML file plus environment overrides.

Precedence: defaults < TOML file < environment. Environment keys are
`STICKERBOT_<SECTION>__<FIELD>` (e.g. `STICKERBOT_RUNTIME__DEVICE=cuda`), plus the
conventional `TELEGRAM_BOT_TOKEN` and `DISCORD_BOT_TOKEN`. Secrets may also come
from files (`token_file`); they are never printed (see `redacted()`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from seal_runtime.api.config import (
    AdaptationSettings,
    GenerationSettings,
    RuntimeSettings,
)
from seal_runtime.api.redis_jobs import redact_url

SECRET_FIELDS = {"token", "shared_secret"}
URL_FIELDS = {"redis_url"}  # printed with their password replaced
REDACTED = "***"
QUEUES = ("embedded", "redis")


@dataclass(frozen=True)
class GeneralSettings:
    database: str = "data/stickerbot.sqlite"
    runtime_url: str = "http://127.0.0.1:8765"
    out_dir: str = "out"
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    adapters: tuple[str, ...] = ()  # which adapters `stickerbot run` starts: telegram, discord
    health_port: int = 8766  # `stickerbot run` answers GET /healthz on 127.0.0.1:<port>; 0: off
    # Where the work goes. "embedded": the one runtime at runtime_url (the default; no Redis).
    # "redis": GPU workers (`stickerbot gpu-worker`) on any number of boxes, fed through Redis.
    queue: str = "embedded"
    # redis://[user:password@]host:port/db, or rediss:// for TLS (the password is never printed).
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_ca_file: str | None = None  # the CA that signed Redis's TLS certificate (rediss://)
    # Jobs the bot keeps on the GPU workers at once; 0: one per slot of the live GPU workers.
    gpu_jobs: int = 0


@dataclass(frozen=True)
class LimitSettings:
    max_prompt_chars: int = 200
    max_upload_bytes: int = 10_000_000
    max_upload_pixels: int = 40_000_000
    blocklist: tuple[str, ...] = ()
    requests_per_minute: int = 6
    daily_quota: int = 100
    queue_cap: int = 200
    user_queue_cap: int = 5  # queued + running stickers of one user; 0: no per-user cap
    setrefs_per_hour: int = 10  # pictures one user may save with /setref in any hour; 0: no limit
    image_threads: int = 2  # uploads decoded at once, off the event loop (bot/image_work.py)
    job_attempts: int = 3
    job_timeout_s: int = 1800
    # Durable jobs (bot/job_worker.py): lease renewed by heartbeats, retry backoff
    # retry_base_s * 2^(attempt-1) capped at retry_max_s, tries to send a finished result.
    job_lease_s: float = 60.0
    retry_base_s: float = 5.0
    retry_max_s: float = 300.0
    delivery_attempts: int = 5
    # Retention (bot/retention.py): embeddings and stickers unused this many days expire; 0 keeps them.
    retention_days: int = 90


@dataclass(frozen=True)
class PackSettings:
    """/makepack and /export (bot/pack_service.py, bot/exports/)."""

    default_size: int = 12  # stickers in a /makepack without a number
    max_size: int = 50  # Telegram's createNewStickerSet takes at most 50 at once
    title: str = "{name}'s stickers"  # exported packs' title ({name}: the user's display name)
    author: str = "SEAL Sticker Bot"  # exported packs' author (WhatsApp's publisher)


@dataclass(frozen=True)
class TelegramSettings:
    token: str | None = None
    token_file: str | None = None
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: tuple[int, ...] = ()
    pack_title: str = "{name}'s stickers"
    # Flood control (Telegram's published limits): requests per second to chats overall,
    # per group per minute, and per private chat (a burst, then this many per second).
    overall_max_rate: float = 30.0
    group_max_rate: float = 20.0
    chat_max_rate: float = 1.0
    chat_burst: int = 3
    max_retries: int = 5  # retries of a request answered 429 (after waiting retry_after)
    progress_interval_s: float = 2.0  # at most one progress edit per chat this often
    max_concurrent_updates: int = 64  # updates of different chats handled at once
    # HTTP connections to the Bot API. A few suffice (Telegram allows ~30 messages/s), and
    # httpcore scans every pooled connection on each request, so a big pool costs latency.
    connection_pool_size: int = 8


@dataclass(frozen=True)
class DiscordSettings:
    token: str | None = None
    token_file: str | None = None
    # Slash commands sync globally (can take a while to show everywhere), or only to this
    # server, where they show at once: for development.
    dev_guild_id: int | None = None
    sync_commands: bool = True  # sync the command list on start
    admin_ids: tuple[int, ...] = ()  # bot-wide admins (user ids), in every server and in DMs
    api_base: str | None = None  # Discord's REST API (default https://discord.com/api/v10); tests use a fake
    progress_interval_s: float = 2.0  # at most one progress edit per sticker this often
    button_timeout_s: float = 3600.0  # the buttons under a sticker stop working after this


@dataclass(frozen=True)
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    adaptation: AdaptationSettings = field(default_factory=AdaptationSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    packs: PackSettings = field(default_factory=PackSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    discord: DiscordSettings = field(default_factory=DiscordSettings)

    def redacted(self) -> dict:
        """The effective settings as a dict, secrets replaced by ***."""
        return _redact(dataclasses.asdict(self))

    def runtime_secret(self) -> str | None:
        return self.runtime.shared_secret


class SettingsError(Exception):
    pass


def _redact(data):
    if isinstance(data, dict):
        return {
            k: (REDACTED if k in SECRET_FIELDS and v else redact_url(v) if k in URL_FIELDS else _redact(v))
            for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_redact(v) for v in data]
    return data


def _coerce(value, annotation, where: str):
    """Turn TOML values or environment strings into the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        inner = next(a for a in args if a is not type(None))
        return _coerce(value, inner, where)
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_coerce(i.strip() if isinstance(i, str) else i, args[0], where) for i in items if i != "")
    if annotation is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{where}: expected true/false, got {value!r}")
        return bool(value)
    if annotation in (int, float, str):
        try:
            return annotation(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected {annotation.__name__}, got {value!r}") from None
    return value


def _build_section(cls, values: dict, section: str):
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        raise SettingsError(f"[{section}] has unknown keys: {', '.join(sorted(unknown))}")
    return cls(**{k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()})


def load_settings(path: str | Path | None = None, environ: typing.Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    path = path or environ.get("STICKERBOT_CONFIG")
    raw: dict[str, dict] = {}
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None

    sections = {f.name: f.type for f in dataclasses.fields(Settings)}
    hints = typing.get_type_hints(Settings)
    unknown = set(raw) - set(sections)
    if unknown:
        raise SettingsError(f"unknown config sections: {', '.join(sorted(unknown))}")
    merged: dict[str, dict] = {name: dict(raw.get(name, {})) for name in sections}
    for key, value in environ.items():
        if key.startswith("STICKERBOT_") and "__" in key:
            section, _, name = key[len("STICKERBOT_") :].partition("__")
            if section.lower() in merged:
                merged[section.lower()][name.lower()] = value
    if environ.get("TELEGRAM_BOT_TOKEN"):
        merged["telegram"]["token"] = environ["TELEGRAM_BOT_TOKEN"]
    if environ.get("DISCORD_BOT_TOKEN"):
        merged["discord"]["token"] = environ["DISCORD_BOT_TOKEN"]
    built = {name: _build_section(hints[name], values, name) for name, values in merged.items()}
    try:  # what the runtime would refuse for every job is refused here, once, at start
        built["adaptation"].check(resolved=False)
        built["generation"].check()
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    settings = Settings(**built)
    if settings.general.queue not in QUEUES:
        raise SettingsError(f"general.queue must be one of {', '.join(QUEUES)}, got {settings.general.queue!r}")
    return settings


def read_token(token: str | None, token_file: str | None, what: str) -> str:
    """The secret itself: from the setting, else from its file. Errors never echo the secret."""
    if token:
        return token.strip()
    if token_file:
        try:
            value = Path(token_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"cannot read the {what} token file {token_file}: {exc.strerror}") from None
        if value:
            return value
    raise SettingsError(f"no {what} token: set the environment variable or token_file")
