"""/makepack: a whole pack of the user's character from one command.

`/makepack [N] [words]` plans N stickers (bot/pack_plan.py; default `packs.default_size`, at
most `packs.max_size`), checks them like N /mysticker requests (blocklist, prompt length),
admits them as one request that counts N against the daily quota (bot/policy.py), and
queues them as one pack order with N durable jobs (storage/pack_orders.py). The worker runs
them like any sticker, taking turns with other users; `bot.pack_delivery.PackAssembler`
turns their progress into the pack's ("7/12") and hands the finished pack to the adapter.
"""

from __future__ import annotations

import logging

import sqlite_utils

from bot.errors import NoReferenceError, UserError
from bot.messages import QueuedPack, UserRef
from bot.pack_plan import plan_pack
from bot.service import StickerService
from bot.settings import Settings
from bot.sticker_job import StickerJob
from storage import jobs, pack_orders, references

log = logging.getLogger(__name__)

# Room the plan's own words take in each prompt ("surprised thumbs up upper body "), so the
# user's words plus them stay within limits.max_prompt_chars.
PLAN_WORDS_CHARS = 32


class PackService:
    def __init__(self, db: sqlite_utils.Database, settings: Settings, service: StickerService | None = None) -> None:
        self.db = db
        self.settings = settings
        self.service = service or StickerService(db, settings)

    def parse_command(self, text: str) -> tuple[int, str]:
        """`[N] [words]` -> (size, words). The size is the first word when it is a number."""
        packs = self.settings.packs
        first, _, rest = text.strip().partition(" ")
        if first.isdigit():
            size, words = int(first), rest.strip()
        else:
            size, words = packs.default_size, text.strip()
        if not 1 <= size <= packs.max_size:
            raise UserError(
                f"A pack has 1 to {packs.max_size} stickers, e.g. /makepack {packs.default_size} cozy winter.",
                code="pack_size",
            )
        room = self.settings.limits.max_prompt_chars - PLAN_WORDS_CHARS
        if len(words) > room:
            raise UserError(
                f"That is a lot of words for a whole pack: at most {room} characters, e.g. /makepack cozy winter.",
                code="prompt_too_long",
            )
        return size, words

    def make_pack(self, user: UserRef, text: str, chat: dict) -> QueuedPack:
        size, words = self.parse_command(text)
        if words:
            self.service.parse(words)  # blocklisted words are refused once, for the whole pack
        texts = plan_pack(words, size, max_chars=self.settings.limits.max_prompt_chars)
        requests = [self.service.parse(t) for t in texts]
        user_id = self.service.user_id(user)
        reference = references.active_reference(self.db, user_id)
        if reference is None:
            raise NoReferenceError()
        admission = self.service.policy.admit(user_id, count=size)
        try:
            order = pack_orders.create_order(
                self.db,
                user_id,
                words,
                [StickerJob.new(r, t, reference).to_json() for r, t in zip(requests, texts, strict=True)],
                chat=chat,
                max_attempts=self.settings.limits.job_attempts,
            )
        except BaseException:
            self.service.policy.refund(admission)
            raise
        log.info("pack queued", extra={"order_id": order.id, "user_id": user_id, "size": size})
        return QueuedPack(
            order.id,
            size,
            jobs.queue_position(self.db, order.job_ids[0]),
            words,
            self.service.has_cached_embedding(reference.sha256),
        )
