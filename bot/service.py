"""The command layer: what /setref, /mysticker, /again, /forget, /status and /help do.

Platform-free: adapters parse their events into calls here and render the typed
results back. Long work is not done here: /mysticker only records a durable job;
the JobWorker runs it against the runtime and hands the sticker to a DeliverySink.
"""

from __future__ import annotations

import json
import logging

import sqlite_utils

from bot import i18n
from bot.blocklist import Blocklist
from bot.errors import NoReferenceError, UserError
from bot.i18n import N_, _
from bot.image_input import ReferenceImage, load_reference_image
from bot.image_work import ImageWork
from bot.messages import CancelledRequest, QueuedJob, ReferenceSaved, UserRef, job_description
from bot.policy import LONGEST_WINDOW_S, RequestPolicy
from bot.schema.attribute_words import labels
from bot.schema.prompt_builder import build_prompt
from bot.schema.prompt_parser import PromptError, parse_prompt
from bot.schema.sticker_request import StickerRequest
from bot.schema.vocabulary import ALL_VOCABULARIES, Attribute
from bot.settings import Settings
from bot.sticker_job import StickerJob
from bot.sticker_library import Sticker, StickerLibrary
from seal_runtime.api.config import ADAPTATION_PROFILES
from storage import embeddings, jobs, pack_orders, references, usage, users
from storage.forget import forget_user
from storage.records import Job

log = logging.getLogger(__name__)


SETREF_HOW = N_("a photo with /setref as caption, or reply /setref to a picture")
ATTRIBUTE_NAMES = {
    Attribute.EMOTION: N_("emotion"),
    Attribute.ACTION: N_("action"),
    Attribute.COMPOSITION: N_("composition"),
    Attribute.STYLE: N_("style"),
    Attribute.BACKGROUND: N_("background"),
    Attribute.APPEARANCE: N_("appearance"),
}


def help_text(setref_how: str = SETREF_HOW) -> str:
    """The help for every platform, in the current language; `setref_how` (marked with N_)
    says how a picture reaches /setref there. The words listed are the language's own."""
    lines = [
        _("I make stickers of your own character."),
        _("1. /setref — send one picture of your character ({how}). A plain background works best.", how=_(setref_how)),
        _("2. /mysticker <words> — e.g. /mysticker happy waving beach"),
        _("   /again — another take of your last sticker"),
        _(
            "   /makepack [N] [words] — a whole pack of N stickers (12 by default), every emotion, "
            "e.g. /makepack cozy winter"
        ),
        _("   /export whatsapp | signal | png — your pack as a file for WhatsApp or Signal"),
        _("   /status — where your sticker is in the queue"),
        _("   /cancel — take back your newest sticker in the queue (/cancel all: every one)"),
        _("   /language — the language I speak with you"),
        _("   /forget — delete your character and everything I stored for you"),
        "",
        _("Words I understand (anything else is passed on as a free description):"),
    ]
    for vocabulary in ALL_VOCABULARIES:
        words = labels(vocabulary.attribute, i18n.current())
        lines.append(f"• {_(ATTRIBUTE_NAMES[vocabulary.attribute])}: {', '.join(words)}")
    lines.append(
        _(
            "Examples: /mysticker sad sitting rain · /mysticker love close up night sky · "
            "/mysticker angry thumbs up city flat"
        )
    )
    return "\n".join(lines)


def prompt_error_message(exc: PromptError) -> str:
    """The parser's refusal in the user's language."""
    if exc.code == "prompt_too_long":
        return _(
            "That prompt is {length} characters long; the limit is {limit}. "
            "Try a few words, e.g. /mysticker happy waving beach",
            **exc.params,
        )
    return _(
        "Tell me what the sticker should show, e.g. /mysticker happy waving beach "
        "(send /help for all the words I know)."
    )


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
        record = users.get_or_create_user(
            self.db, user.platform, user.platform_user_id, user.display_name, platform_language=user.language
        )
        if record.banned:
            raise UserError(_("Sorry, you can't use this bot."), code="banned")
        return record.id

    # -- languages ---------------------------------------------------------------------------
    def language(self, user: UserRef) -> str:
        """The language to answer `user` in: their /language choice, else what their platform
        reports (recorded for the replies the worker sends later), else `general.language`."""
        record = users.find_user(self.db, user.platform, user.platform_user_id)
        if record is not None and user.language and user.language != record.platform_language:
            record = users.get_or_create_user(
                self.db, user.platform, user.platform_user_id, platform_language=user.language
            )
        return i18n.pick_language(record.language if record else None, user.language, self.settings.general.language)

    def set_language(self, user: UserRef, choice: str) -> str:
        """/language CODE: the user's own choice ("auto": the platform's again). Returns the
        language now in use; raises UserError for a language we do not speak."""
        word = choice.strip().lower()
        if word in ("auto", "default"):
            code = None
        else:
            code = i18n.match_language(word) or next(
                (c for c, name in i18n.LANGUAGES.items() if name.lower() == word), None
            )
            if code is None:
                raise UserError(
                    _(
                        "I speak {languages}. Choose one, e.g. /language es (or /language auto: "
                        "the language of your app).",
                        languages=i18n.language_list(),
                    ),
                    code="language",
                )
        users.set_language(self.db, self.user_id(user), code)
        return self.language(user)

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
            raise UserError(prompt_error_message(exc), code=exc.code) from exc
        if self._blocklist.blocks(text, build_prompt(request)):
            raise UserError(_("Sorry, I can't make that sticker. Try other words."), code="blocked")
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
        return QueuedJob(job.id, jobs.queue_position(self.db, job.id), request.describe(i18n.current()), cached)

    def again(self, user: UserRef, chat: dict) -> QueuedJob:
        user_id = self.user_id(user)
        last = jobs.last_job(self.db, user_id, kind="sticker")
        if last is None:
            raise UserError(_("There is no sticker to redo yet. Try /mysticker happy waving first."), code="no_last")
        return self.request_sticker(user, StickerJob.from_json(last.request).text, chat)

    def words_of(self, user_id: int, sticker: Sticker) -> str:
        """The words a sticker was asked for with (the "Again" button under it makes another
        take of them); a friendly refusal when its job is gone."""
        job = jobs.get_job(self.db, sticker.job_id, user_id=user_id) if sticker.job_id else None
        if job is None:
            raise UserError(_("I no longer know how this sticker was made. Try /mysticker."), code="no_job")
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
            if has_ref:
                return _("Nothing in the queue for you. Your character is saved.")
            return _("Nothing in the queue for you. No character saved yet: send /setref with a picture.")
        lines = []
        for job in active:
            what = job_description(job.request)
            if job.state == "queued":
                lines.append(
                    _(
                        "• {what}: queued at position {position}",
                        what=what,
                        position=jobs.queue_position(self.db, job.id),
                    )
                )
            elif job.state == "adapting":
                lines.append(_("• {what}: learning your character", what=what))
            else:
                lines.append(_("• {what}: drawing", what=what))
        return _("Your stickers in progress:") + "\n" + "\n".join(lines)

    # -- /cancel -----------------------------------------------------------------------------
    def cancel(
        self, user: UserRef, *, everything: bool = False, request_id: str | None = None
    ) -> list[CancelledRequest]:
        """Take back the user's newest request still queued or running (a whole /makepack
        counts as one), all of them (`everything`), or the one a Cancel button names
        (`request_id`: a job or pack order id; only ever the user's own). A running job stops
        on the runtime at its next step (its worker sees the job cancelled,
        bot/job_worker.py), nothing of it is delivered, and each sticker not made goes back
        to today's quota. Newest first."""
        record = users.find_user(self.db, user.platform, user.platform_user_id)
        if record is None:
            return []
        groups: dict[str, list[Job]] = {}  # request id (job, or pack order) -> its active jobs
        for job in reversed(jobs.active_jobs_for_user(self.db, record.id)):  # newest first
            groups.setdefault(StickerJob.from_json(job.request).pack_order or job.id, []).append(job)
        if request_id is not None:
            chosen = [(request_id, groups[request_id])] if request_id in groups else []
        else:
            chosen = list(groups.items()) if everything else list(groups.items())[:1]
        now = self.policy.clock()
        outcome = []
        for group_id, members in chosen:
            stopped = jobs.cancel_jobs(self.db, record.id, [j.id for j in members], now=now)
            if not stopped:
                continue  # it finished meanwhile
            today = [j for j in stopped if usage.utc_day(j.created_at) == usage.utc_day(now)]
            if today:
                usage.refund_quota(self.db, record.id, count=len(today), now=now)
            pack = group_id != stopped[0].id
            if pack:
                pack_orders.close_cancelled(self.db, group_id, record.id)
            outcome.append(
                CancelledRequest(
                    group_id,
                    job_description(stopped[0].request) if not pack else "",
                    len(stopped),
                    running=any(j.running for j in stopped),
                    pack=pack,
                )
            )
            log.info(
                "request cancelled",
                extra={"user_id": record.id, "request_id": group_id, "jobs": len(stopped), "refunded": len(today)},
            )
        return outcome

    def forget(self, user: UserRef) -> dict[str, int]:
        record = users.find_user(self.db, user.platform, user.platform_user_id)
        if record is None:
            return {}
        now = self.policy.clock()
        counts = forget_user(self.db, record.id, now=now, counted_since=now - LONGEST_WINDOW_S)
        log.info("user forgotten", extra={"user_id": record.id, "counts": json.dumps(counts)})
        return counts
