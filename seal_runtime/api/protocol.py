"""Messages between the bot and the runtime process.

The request is one JSON body; the answer is a stream of frames (`seal_runtime.api.frames`):
progress events, the learned concept as soon as adaptation ends, then the result or an
error. Torch-free: the bot imports this module and the client, never the model code. A
request carries everything the runtime needs (reference bytes or the cached embedding),
and the concept comes back before generation starts, so the runtime keeps no state
between jobs, a crash loses nothing, and a retry after adaptation does not adapt again.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields

from seal_runtime.api.frames import Frame, FramingError, encode_frame

API_VERSION = 2  # 2: framed binary results and the early "concept" frame
# The header that carries runtime.shared_secret from the bot to the runtime.
SECRET_HEADER = "X-Seal-Secret"

# Bounds of what one request may ask for (bad requests get a 400, never retried).
MAX_PROMPTS = 16
MAX_PROMPT_CHARS = 1000
# What a request may say is behind the character (JobRequest.background).
BACKGROUNDS = ("auto", "plain", "scene")


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class JobRequest:
    job_id: str
    reference_png: bytes
    prompts: tuple[str, ...]
    seeds: tuple[int, ...]
    adaptation: dict  # AdaptationSettings as a dict
    generation: dict  # GenerationSettings as a dict
    mask_png: bytes | None = None
    embedding: bytes | None = None  # cached learned_embeds.safetensors; skips adaptation
    # Cached LoRA weights that belong with `embedding` when adaptation.method is "lora".
    adapter_weights: bytes | None = None
    # Which claim of the bot's job this is (1, 2, …): names the attempt in Redis, where the
    # same attempt sent twice must run once. The runtime itself ignores it.
    attempt: int = 0
    # What the prompts asked for behind the character: "plain" (cut it out), "scene" (keep
    # it), "auto" (decide from the picture); see seal_runtime/imaging/cutout.py.
    background: str = "auto"

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(
            reference_png=b64(self.reference_png),
            mask_png=b64(self.mask_png),
            embedding=b64(self.embedding),
            adapter_weights=b64(self.adapter_weights),
            prompts=list(self.prompts),
            seeds=list(self.seeds),
        )
        return data

    @classmethod
    def from_json(cls, data: dict) -> JobRequest:
        """Parse and bound a request; anything malformed raises BadJobRequest."""
        from seal_runtime.api.config import AdaptationSettings, GenerationSettings

        try:
            if not isinstance(data, dict):
                raise BadJobRequest("a job request is a JSON object")
            prompts, seeds = data["prompts"], data["seeds"]
            if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                raise BadJobRequest("prompts must be a list of strings")
            if not 1 <= len(prompts) <= MAX_PROMPTS:
                raise BadJobRequest(f"a job has 1 to {MAX_PROMPTS} prompts, got {len(prompts)}")
            if any(len(p) > MAX_PROMPT_CHARS for p in prompts):
                raise BadJobRequest(f"a prompt is at most {MAX_PROMPT_CHARS} characters")
            if (
                not isinstance(seeds, list)
                or len(seeds) != len(prompts)
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63 for s in seeds)
            ):
                raise BadJobRequest("seeds must be one non-negative integer per prompt")
            request = cls(
                job_id=str(data["job_id"])[:200],
                reference_png=unb64(data["reference_png"]) or b"",
                prompts=tuple(prompts),
                seeds=tuple(seeds),
                adaptation=dict(data.get("adaptation") or {}),
                generation=dict(data.get("generation") or {}),
                mask_png=unb64(data.get("mask_png")),
                embedding=unb64(data.get("embedding")),
                adapter_weights=unb64(data.get("adapter_weights")),
                attempt=int(data.get("attempt") or 0),
                background=str(data.get("background") or "auto"),
            )
            if request.background not in BACKGROUNDS:
                raise BadJobRequest(f"background must be one of {', '.join(BACKGROUNDS)}")
            # Settings are checked here, before the job waits for the GPU.
            AdaptationSettings.from_dict(request.adaptation).check(resolved=False)
            GenerationSettings.from_dict(request.generation).check()
        except BadJobRequest:
            raise
        except KeyError as exc:
            raise BadJobRequest(f"missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:  # binascii.Error is a ValueError
            raise BadJobRequest(str(exc)) from None
        return request


@dataclass(frozen=True)
class ProgressEvent:
    """stage: 'queued' (step = position), 'started', 'adapting' (step i of n),
    'generating' (step j of m)."""

    job_id: str
    stage: str
    step: int = 0
    total: int = 0
    image: int = 0  # which image of the request is being sampled
    loss: float | None = None

    def to_frame(self) -> list[bytes]:
        return encode_frame({"event": "progress", **asdict(self)})

    @classmethod
    def from_frame(cls, frame: Frame) -> ProgressEvent:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in frame.header.items() if k in known})


@dataclass(frozen=True)
class LearnedConcept:
    """What adaptation made, sent the moment it ends (before generation) so the bot can
    store it at once: a later failure, or a retry, never adapts again."""

    job_id: str
    model_id: str
    settings_hash: str
    embedding: bytes  # learned_embeds.safetensors
    adapter_weights: bytes | None = None  # LoRA weights (method "lora")
    mask_png: bytes | None = None  # the subject mask the runtime computed, if it did
    mask_source: str | None = None
    timings: dict = field(default_factory=dict)

    def to_frame(self) -> list[bytes]:
        header = {
            "event": "concept",
            "job_id": self.job_id,
            "model_id": self.model_id,
            "settings_hash": self.settings_hash,
            "mask_source": self.mask_source,
            "timings": self.timings,
        }
        return encode_frame(
            header,
            [("embedding", self.embedding), ("adapter_weights", self.adapter_weights), ("mask_png", self.mask_png)],
        )

    @classmethod
    def from_frame(cls, frame: Frame) -> LearnedConcept:
        embedding = frame.part("embedding")
        if not embedding:
            raise FramingError("a concept frame without its embedding")
        header = frame.header
        return cls(
            job_id=str(header["job_id"]),
            model_id=str(header["model_id"]),
            settings_hash=str(header["settings_hash"]),
            embedding=embedding,
            adapter_weights=frame.part("adapter_weights"),
            mask_png=frame.part("mask_png"),
            mask_source=header.get("mask_source"),
            timings=dict(header.get("timings") or {}),
        )


@dataclass(frozen=True)
class JobResult:
    job_id: str
    model_id: str
    settings_hash: str
    embedding: bytes
    images_png: tuple[bytes, ...]
    mask_png: bytes | None = None  # the subject mask the runtime used (to cache with the reference)
    mask_source: str | None = None
    adapted: bool = False  # False when the cached embedding was used
    timings: dict = field(default_factory=dict)
    # LoRA weights (safetensors) of the second TTF base; cache them with the embedding.
    adapter_weights: bytes | None = None

    def to_frame(self) -> list[bytes]:
        """The result frame: the images. The concept went ahead in its own frame (when the job
        adapted) or came with the request (a cache hit), so it is not sent twice."""
        header = {
            "event": "result",
            "job_id": self.job_id,
            "model_id": self.model_id,
            "settings_hash": self.settings_hash,
            "adapted": self.adapted,
            "timings": self.timings,
        }
        return encode_frame(header, [("image", png) for png in self.images_png])

    @classmethod
    def from_frame(cls, frame: Frame, request: JobRequest, concept: LearnedConcept | None) -> JobResult:
        header = frame.header
        adapted = bool(header.get("adapted"))
        if adapted and concept is None:
            raise FramingError("the result says the job adapted, but no concept frame came before it")
        images = tuple(frame.all_parts("image"))
        if len(images) != len(request.prompts):
            raise FramingError(f"the result has {len(images)} images for {len(request.prompts)} prompts")
        source = concept if adapted else None
        return cls(
            job_id=str(header["job_id"]),
            model_id=str(header["model_id"]),
            settings_hash=str(header["settings_hash"]),
            embedding=source.embedding if source else (request.embedding or b""),
            images_png=images,
            mask_png=concept.mask_png if concept else None,
            mask_source=concept.mask_source if concept else None,
            adapted=adapted,
            timings=dict(header.get("timings") or {}),
            adapter_weights=source.adapter_weights if source else request.adapter_weights,
        )


# RuntimeJobError codes the bot acts on.
BAD_REQUEST = "bad_request"
# The request's cached concept cannot be used on this model (corrupt bytes, another model's
# shapes or keys): the bot drops that cache entry and learns the concept again, once.
BAD_CACHED_CONCEPT = "bad_cached_concept"
# The stream broke (reset, truncation, oversize, garbled frames): retry.
TRANSPORT = "transport"


class RuntimeJobError(Exception):
    """The runtime could not do the job; `retryable` is False for bad requests; `code`
    names the failures the bot treats specially (the constants above)."""

    def __init__(self, message: str, *, retryable: bool = True, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code

    def to_frame(self, job_id: str) -> list[bytes]:
        return encode_frame(
            {"event": "error", "job_id": job_id, "message": str(self), "retryable": self.retryable, "code": self.code}
        )

    @classmethod
    def from_frame(cls, frame: Frame) -> RuntimeJobError:
        header = frame.header
        return cls(
            str(header.get("message", "runtime error")),
            retryable=bool(header.get("retryable", True)),
            code=header.get("code"),
        )


class BadJobRequest(ValueError):
    """A request the runtime refuses to run (answered 400, never retried)."""


class JobAnswer:
    """Reads one job's answer frame by frame, in order, whatever carried the frames (the
    runtime's HTTP stream, a GPU worker's Redis stream): progress and the learned concept
    go to the callbacks, the result is returned, an error raised."""

    def __init__(self, request: JobRequest, on_progress=None, on_concept=None) -> None:
        self.request = request
        self.on_progress = on_progress
        self.on_concept = on_concept
        self.concept: LearnedConcept | None = None

    async def take(self, frame: Frame) -> JobResult | None:
        """The result once it came (None before); raises RuntimeJobError for an error frame."""
        if frame.event == "progress":
            if self.on_progress is not None:
                await self.on_progress(ProgressEvent.from_frame(frame))
        elif frame.event == "concept":
            self.concept = LearnedConcept.from_frame(frame)
            if self.on_concept is not None:
                await self.on_concept(self.concept)
        elif frame.event == "result":
            return JobResult.from_frame(frame, self.request, self.concept)
        elif frame.event == "error":
            raise RuntimeJobError.from_frame(frame)
        return None


# The callbacks a runtime client (HTTP or Redis) reports a job's progress and concept through.
OnProgress = Callable[[ProgressEvent], Awaitable[None]]
OnConcept = Callable[[LearnedConcept], Awaitable[None]]
