"""The command layer: what /setref, /mysticker, /again, /forget, /status and /help do.

Platform-free: adapters parse their events into calls here and render the typed
results back. Long work is not done here: /mysticker only records a durable job;
the JobWorker runs it against the runtime and hands the sticker to a DeliverySink.
"""

from __future__ import annotations

import json
import logging

import sqlite_utils

from bot.blocklist import Blocklist
from bot.errors import NoReferenceError, UserError
from bot.image_input import ReferenceImage, load_reference_image
from bot.image_work import ImageWork
from bot.messages import QueuedJob, ReferenceSaved, UserRef
from bot.policy import LONGEST_WINDOW_S, RequestPolicy
from bot.schema.prompt_builder import build_prompt
from bot.schema.prompt_parser import PromptError, parse_prompt, words_for_help
from bot.schema.sticker_request import StickerRequest
from bot.settings import Settings
from bot.sticker_job import StickerJob
from bot.sticker_library import Sticker, StickerLibrary
from seal_runtime.api.config import ADAPTATION_PROFILES
from storage import embeddings, jobs, references, users
from storage.forget import forget_user

log = logging.getLogger(__name__)


SETREF_HOW = "a photo with /setref as caption, or reply /setref to a picture"


def help_text(setref_how: str = SETREF_HOW) -> str:
    """The help for every platform; `setref_how` says how a picture reaches /setref there."""
    vocab = words_for_help()
    lines = [
        "I make stickers of your own character.",
        f"1. /setref — send one picture of your character ({setref_how}). A plain background works best.",
        "2. /mysticker <words> — e.g. /mysticker happy waving beach",
        "   /again — another take of your last sticker",
        "   /makepack [N] [words] — a whole pack of N stickers (12 by default), every emotion, e.g. /makepack cozy winter",
        "   /export whatsapp | signal | png — your pack as a file for WhatsApp or Signal",
        "   /status — where your sticker is in the queue",
        "   /forget — delete your character and everything I stored for you",
        "",
        "Words I understand (anything else is passed on as a free description):",
    ]
    for attribute, words in vocab.items():
        lines.append(f"• {attribute}: {', '.join(words)}")
    lines.append(
        "Examples: /mysticker sad sitting rain · /mysticker love close up night sky · "
        "/mysticker angry thumbs up city flat"
    )
    return "\n".join(lines)


class StickerService:
    def __init__(self, db: sqlite_utils.Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._blocklist = Blocklist(settings.limits.blocklist)
        self.policy = RequestPolicy(db, settings)
        self.images = ImageWork(settings.limits.image_threads)
        self.stickers = StickerLibrary(db)

    # -- users -------------------------------------------------------------------------------
    def user_id(self, user: UserRef) -> int:
        record = users.get_or_create_user(self.db, user.platform, user.platform_user_id, user.display_name)
        if record.banned:
            raise UserError("Sorry, you can't use this bot.", code="banned")
        return record.id

    # -- /setref -----------------------------------------------------------------------------
    def set_reference(self, user: UserRef, data: bytes) -> ReferenceSaved:
        """Validate, then store. Nothing is stored on bad input. Decodes on the calling
        thread: the console and tests; the chat adapters use `set_reference_async`.

        The subject mask is made by the runtime, with the job's first adaptation: it is
        where the segmenters are (segment-anything, rembg, on the GPU box), so masks are
        made in one place; the worker caches the mask it returns with the reference."""
        self._may_save_reference(user)
        return self._save_reference(user, self._decode(data))

    async def set_reference_async(self, user: UserRef, data: bytes) -> ReferenceSaved:
        """`set_reference` with the decoding on the bounded image threads (bot/image_work.py),
        so the event loop keeps serving everyone else meanwhile."""
        self._may_save_reference(user)
        return self._save_reference(user, await self.images.run(self._decode, data))

    def _may_save_reference(self, user: UserRef) -> None:
        if users.find_user(self.db, user.platform, user.platform_user_id) is not None:
            self.policy.check_reference(self.user_id(user))  # before any decoding: it costs CPU

    def _decode(self, data: bytes) -> ReferenceImage:
        """Image work only (no database): decode, normalise, encode the PNG that is stored."""
        limits = self.settings.limits
        image = load_reference_image(data, max_bytes=limits.max_upload_bytes, max_pixels=limits.max_upload_pixels)
        image.png_bytes()
        return image

    def _save_reference(self, user: UserRef, image: ReferenceImage) -> ReferenceSaved:
        user_id = self.user_id(user)
        current = references.active_reference(self.db, user_id)
        png = image.png_bytes()
        saved = references.save_reference(self.db, user_id, png, None, None, width=image.size[0], height=image.size[1])
        self.policy.count_reference(user_id)
        # Old pictures no queued job needs go now, so repeated /setref does not fill the disk.
        references.delete_unneeded_references(self.db, user_id)
        log.info("reference saved", extra={"user_id": user_id, "sha256": saved.sha256[:12]})
        return ReferenceSaved(
            reference_id=saved.id,
            sha256=saved.sha256,
            width=saved.width,
            height=saved.height,
            notes=tuple(image.notes),
            unchanged=current is not None and current.sha256 == saved.sha256,
        )

    # -- /mysticker, /again ------------------------------------------------------------------
    def parse(self, text: str) -> StickerRequest:
        try:
            request = parse_prompt(text, max_chars=self.settings.limits.max_prompt_chars)
        except PromptError as exc:
            raise UserError(exc.user_message, code=exc.code) from exc
        if self._blocklist.blocks(text, build_prompt(request)):
            raise UserError("Sorry, I can't make that sticker. Try other words.", code="blocked")
        return request

    def request_sticker(self, user: UserRef, text: str, chat: dict, *, seed: int | None = None) -> QueuedJob:
        request = self.parse(text)
        user_id = self.user_id(user)
        reference = references.active_reference(self.db, user_id)
        if reference is None:
            raise NoReferenceError()
        admission = self.policy.admit(user_id)  # queue cap, rate limit, daily quota (bot/policy.py)
        payload = StickerJob.new(request, text, reference, seed).to_json()
        try:
            job = jobs.create_job(
                self.db, user_id, "sticker", payload, chat=chat, max_attempts=self.settings.limits.job_attempts
            )
        except BaseException:
            self.policy.refund(admission)
            raise
        cached = self.has_cached_embedding(reference.sha256)
        log.info("job queued", extra={"job_id": job.id, "user_id": user_id, "cached": cached})
        return QueuedJob(job.id, jobs.queue_position(self.db, job.id), request.describe(), cached)

    def again(self, user: UserRef, chat: dict) -> QueuedJob:
        user_id = self.user_id(user)
        last = jobs.last_job(self.db, user_id, kind="sticker")
        if last is None:
            raise UserError("There is no sticker to redo yet. Try /mysticker happy waving first.", code="no_last")
        return self.request_sticker(user, StickerJob.from_json(last.request).text, chat)

    def words_of(self, user_id: int, sticker: Sticker) -> str:
        """The words a sticker was asked for with (the "Again" button under it makes another
        take of them); a friendly refusal when its job is gone."""
        job = jobs.get_job(self.db, sticker.job_id, user_id=user_id) if sticker.job_id else None
        if job is None:
            raise UserError("I no longer know how this sticker was made. Try /mysticker.", code="no_job")
        return StickerJob.from_json(job.request).text

    def has_cached_embedding(self, reference_sha256: str) -> bool:
        model_id = embeddings.last_model_id(self.db)
        if model_id is None:
            return False
        # The model's adaptation profile is the runtime's to say; either one's key may be cached.
        return any(
            embeddings.exists(
                self.db, reference_sha256, model_id, self.settings.adaptation.settings_hash(model_id, profile)
            )
            for profile in ADAPTATION_PROFILES
        )

    # -- /status, /forget --------------------------------------------------------------------
    def status(self, user: UserRef) -> str:
        user_id = self.user_id(user)
        active = jobs.active_jobs_for_user(self.db, user_id)
        has_ref = references.active_reference(self.db, user_id) is not None
        if not active:
            ref = "Your character is saved." if has_ref else "No character saved yet: send /setref with a picture."
            return f"Nothing in the queue for you. {ref}"
        lines = []
        for job in active:
            description = StickerJob.from_json(job.request).description
            if job.state == "queued":
                lines.append(f"• {description}: queued at position {jobs.queue_position(self.db, job.id)}")
            else:
                lines.append(f"• {description}: {job.state}")
        return "Your stickers in progress:\n" + "\n".join(lines)

    def forget(self, user: UserRef) -> dict[str, int]:
        record = users.find_user(self.db, user.platform, user.platform_user_id)
        if record is None:
            return {}
        now = self.policy.clock()
        counts = forget_user(self.db, record.id, now=now, counted_since=now - LONGEST_WINDOW_S)
        log.info("user forgotten", extra={"user_id": record.id, "counts": json.dumps(counts)})
        return counts
