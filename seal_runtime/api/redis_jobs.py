"""What the bot and the GPU workers agree on in Redis (scale-out: `general.queue = "redis"`).

The SQLite job table on the bot's disk stays the source of truth; Redis only carries one
claimed attempt of a job to whichever GPU worker is free, and its answer back:

- arq's queue `QUEUE_NAME` holds the attempts waiting for a GPU worker. An attempt's arq
  job id is `<sqlite job id>:<attempt>` (`arq_job_id`), so enqueueing the same attempt
  twice (a reply lost on the way back) runs it once.
- `stickerbot:request:<arq id>` holds the JobRequest as JSON, apart from arq's job record:
  arq copies a job's arguments into its result record, and a request weighs megabytes.
- `stickerbot:frames:<arq id>` is a Redis stream of what the worker's runtime answered, in
  order: `started`, then `progress`…, `concept` (the learned embedding, the moment
  adaptation ends), then one `result` or `error`. Every entry has `kind`, `try` (arq's
  try number: a redo after a worker died starts again at `started`) and `data`: for all
  but `started`, one frame exactly as the runtime sent it (`seal_runtime.api.frames`).
- `stickerbot:gpu-worker:<id>` is a live GPU worker's registration (`WorkerInfo`), which
  expires unless the worker renews it: the bot sizes its pool of job workers from these.

arq's jobs are serialised as JSON, never pickle: whoever can write to Redis must not be
able to run code on the GPU boxes.

Torch-free, like everything under `seal_runtime.api`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from seal_runtime.api.frames import MAX_HEADER_BYTES, Frame, FramingError, read_frames

QUEUE_NAME = "stickerbot:queue"
FUNCTION = "sticker_job"
PREFIX = "stickerbot:"
WORKER_PREFIX = PREFIX + "gpu-worker:"
# A GPU worker renews its registration every WORKER_RENEW_S; it counts as gone WORKER_TTL_S
# after its last renewal (SIGKILL, a lost network, its runtime down).
WORKER_TTL_S = 6.0
WORKER_RENEW_S = 2.0
# The running job's arq "in progress" key is kept this short and renewed while the job runs,
# so a SIGKILLed worker's job is picked up again by another within this many seconds
# (arq's own default would hold it for the whole job timeout).
JOB_LEASE_S = 10.0
# How long a finished job's frames and request stay when nobody reads them (the bot died).
LEFTOVER_TTL_S = 3600

if TYPE_CHECKING:
    from arq.connections import RedisSettings

KINDS = ("started", "progress", "concept", "result", "error")


def arq_job_id(job_id: str, attempt: int, redo: int = 0) -> str:
    """The arq id of one attempt of a SQLite job; `redo` > 0 when the bot itself must run
    the same attempt again (its earlier run ended, for instance aborted on shutdown)."""
    return f"{job_id}:{attempt}" + (f".{redo}" if redo else "")


def request_key(arq_id: str) -> str:
    return f"{PREFIX}request:{arq_id}"


def frames_key(arq_id: str) -> str:
    return f"{PREFIX}frames:{arq_id}"


# -- connection ----------------------------------------------------------------------------------
def redis_settings(url: str, ca_file: str | None = None) -> RedisSettings:
    """arq's connection settings from `redis://[user:password@]host:port/db` or `rediss://`
    (TLS; `ca_file` verifies a private CA, and the host name is checked against the
    certificate). Raises ValueError with a message an operator can act on."""
    from arq.connections import RedisSettings  # here: `redact_url` users need no arq

    parts = urlsplit(url or "")
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"general.redis_url must start with redis:// or rediss:// (TLS), got {redact_url(url)!r}")
    if not parts.hostname:
        raise ValueError(f"general.redis_url has no host: {redact_url(url)!r}")
    try:
        settings = RedisSettings.from_dsn(url)
    except ValueError as exc:
        raise ValueError(f"general.redis_url {redact_url(url)!r} is not valid: {exc}") from None
    settings.conn_timeout = 5
    settings.conn_retries = 0  # callers retry on their own schedule
    if settings.ssl:
        settings.ssl_ca_certs = ca_file
        settings.ssl_check_hostname = True
    return settings


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, for logs and `stickerbot config`."""
    parts = urlsplit(url or "")
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def serialize_job(data: dict) -> bytes:
    # arq stores a failed job's exception in its result record: keep its text, not the object.
    return json.dumps(data, default=lambda value: f"{type(value).__name__}: {value}").encode()


def deserialize_job(raw: bytes) -> dict:
    return json.loads(raw)


# -- the frames of one job -------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One entry of a job's frames stream."""

    kind: str
    attempt_try: int
    data: bytes

    def fields(self) -> dict[str, bytes]:
        return {"kind": self.kind.encode(), "try": str(self.attempt_try).encode(), "data": self.data}

    @classmethod
    def from_fields(cls, fields: dict) -> Entry:
        def get(name: str) -> bytes:
            value = fields.get(name.encode(), fields.get(name))
            if value is None:
                raise ValueError(f"a frames entry without {name!r}")
            return value if isinstance(value, bytes) else str(value).encode()

        kind = get("kind").decode()
        if kind not in KINDS:
            raise ValueError(f"unknown frames entry kind {kind!r}")
        return cls(kind, int(get("try")), get("data"))


def started_entry(attempt_try: int, worker_id: str) -> Entry:
    return Entry("started", attempt_try, json.dumps({"worker": worker_id, "at": time.time()}).encode())


def frame_entry(attempt_try: int, chunks: list[bytes]) -> Entry:
    """An entry carrying one frame of the runtime's answer, exactly as the runtime's own
    `to_frame()` encodes it (progress, concept, result, error): one codec for both paths."""
    data = b"".join(chunks)
    kind = json.loads(data[: data.index(b"\n")])["event"]
    return Entry(kind, attempt_try, data)


async def frame_of(entry: Entry) -> Frame:
    """The frame an entry carries, read back with the runtime transport's own reader."""
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES + 1)
    reader.feed_data(entry.data)
    reader.feed_eof()
    frames = [frame async for frame in read_frames(reader)]
    if len(frames) != 1 or frames[0].event != entry.kind:
        raise FramingError(f"a {entry.kind!r} entry does not hold exactly one {entry.kind!r} frame")
    return frames[0]


# -- live GPU workers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerInfo:
    """A GPU worker's registration: who it is, what model its runtime serves, how many jobs
    it takes at once."""

    worker_id: str
    model_id: str
    slots: int = 1
    runtime: str = ""  # the runtime's address, without credentials
    started_at: float = 0.0
    jobs_done: int = 0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> WorkerInfo:
        data = json.loads(raw)
        return cls(
            worker_id=str(data["worker_id"]),
            model_id=str(data["model_id"]),
            slots=int(data.get("slots", 1)),
            runtime=str(data.get("runtime", "")),
            started_at=float(data.get("started_at", 0.0)),
            jobs_done=int(data.get("jobs_done", 0)),
        )


def worker_key(worker_id: str) -> str:
    return WORKER_PREFIX + worker_id


async def live_workers(redis) -> list[WorkerInfo]:
    """The GPU workers whose registration has not expired, by id."""
    keys = [key async for key in redis.scan_iter(match=WORKER_PREFIX + "*", count=200)]
    if not keys:
        return []
    found = []
    for raw in await redis.mget(keys):
        if raw:  # expired between the scan and the read
            try:
                found.append(WorkerInfo.from_json(raw))
            except (ValueError, KeyError, TypeError):
                continue
    return sorted(found, key=lambda w: w.worker_id)
