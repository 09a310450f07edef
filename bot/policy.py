"""Who may queue a sticker right now: per-user rate limit, daily quota, global queue cap.

`StickerService.request_sticker` asks `admit` before it creates a job, and `refund`s if
the job is then not created. Each refusal is a `UserError` with a friendly message that
says when to try again. Prompt length is checked by the parser, upload bytes and pixels
by `bot.image_input`, the blocklist by the service; admin rights by `bot.admin`.

- Rate limit: at most `limits.requests_per_minute` stickers queued by one user in any
  60 s (a sliding window over their requests in SQLite; survives restarts and /forget).
- /setref rate limit: at most `limits.setrefs_per_hour` pictures saved by one user in any
  hour: each new picture is decoded and stored, so this bounds both CPU and disk.
- Daily quota: `limits.daily_quota` stickers per UTC day, or the user's own quota set by
  an admin; counted on the user row, reset at midnight by `bot.retention`'s scheduler.
- Queue cap: at most `limits.queue_cap` queued or running jobs in total: "busy".
- Per-user queue cap: at most `limits.user_queue_cap` queued or running jobs of one user,
  so that a few users cannot fill the global cap for everyone; its own message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from bot.errors import BusyError, UserError
from bot.settings import Settings
from storage import jobs, pack_orders, usage, users

WINDOW_S = 60.0
SETREF_WINDOW_S = 3600.0
# Requests older than the longest window count for no limit: housekeeping drops them.
LONGEST_WINDOW_S = max(WINDOW_S, SETREF_WINDOW_S)


class RateLimitedError(UserError):
    def __init__(self, retry_in_s: float) -> None:
        seconds = max(1, math.ceil(retry_in_s))
        super().__init__(f"Slow down a little: you can ask for another sticker in {seconds} s.", code="rate_limited")
        self.retry_in_s = seconds


class QuotaExceededError(UserError):
    def __init__(self, quota: int) -> None:
        message = (
            f"You have had your {quota} stickers for today. The counter resets at midnight (UTC)."
            if quota > 0
            else "Making stickers is switched off for your account. Ask the bot's admin."
        )
        super().__init__(message, code="quota")
        self.quota = quota


class PackQuotaError(UserError):
    def __init__(self, size: int, left: int) -> None:
        super().__init__(
            f"A pack of {size} stickers counts {size} against your daily quota, and you have {left} "
            f"left today. Ask for a smaller pack (e.g. /makepack {left}) or try again after midnight "
            "(UTC)."
            if left
            else "You have had all your stickers for today. The counter resets at midnight (UTC).",
            code="quota",
        )
        self.size, self.left = size, left


class UserQueueFullError(UserError):
    def __init__(self, cap: int) -> None:
        super().__init__(
            f"You already have {cap} stickers on the way. Wait for one of them to arrive, then ask again.",
            code="user_queue_full",
        )
        self.cap = cap


class SetrefRateLimitedError(UserError):
    def __init__(self, per_hour: int, retry_in_s: float) -> None:
        minutes = max(1, math.ceil(retry_in_s / 60))
        super().__init__(
            f"You have changed your character {per_hour} times in the last hour. You can save a new "
            f"one in {minutes} min.",
            code="setref_rate_limited",
        )
        self.retry_in_s = retry_in_s


@dataclass(frozen=True)
class Admission:
    """A granted request: one unit of today's quota is taken (give it back with `refund`)."""

    user_id: int
    quota: int
    used_today: int
    event_id: int | None = None  # the request as the rate limit counts it
    count: int = 1  # stickers taken from today's quota (a pack: its size)


class RequestPolicy:
    def __init__(
        self, db: sqlite_utils.Database, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.limits = settings.limits
        self.clock = clock

    def daily_quota(self, user_id: int) -> int:
        record = users.get_user(self.db, user_id)
        if record is not None and record.daily_quota is not None:
            return record.daily_quota
        return self.limits.daily_quota

    def admit(self, user_id: int, count: int = 1) -> Admission:
        """Check the limits for `count` more stickers of `user_id` (a pack: its size, one
        request: one against the rate limit and the per-user queue cap, `count` against the
        daily quota and the global queue cap); raises the first that applies."""
        now = self.clock()
        if jobs.count_active(self.db) + count > self.limits.queue_cap:
            raise BusyError()
        user_cap = self.limits.user_queue_cap
        if user_cap > 0 and pack_orders.active_requests(self.db, user_id) >= user_cap:
            raise UserQueueFullError(user_cap)
        per_minute = self.limits.requests_per_minute
        if per_minute > 0:
            recent = usage.request_times_since(self.db, user_id, now - WINDOW_S)
            if len(recent) >= per_minute:
                # The window frees a slot when the oldest request in it is a minute old.
                raise RateLimitedError(recent[-per_minute] + WINDOW_S - now)
        quota = self.daily_quota(user_id)
        if not usage.take_quota(self.db, user_id, quota, count=count, now=now):
            if count > 1 and quota > 0:
                raise PackQuotaError(count, max(0, quota - usage.quota_used(self.db, user_id, now=now)))
            raise QuotaExceededError(quota)
        event_id = usage.record_event(self.db, user_id, usage.STICKER, now=now)
        return Admission(user_id, quota, usage.quota_used(self.db, user_id, now=now), event_id, count)

    def refund(self, admission: Admission) -> None:
        usage.refund_quota(self.db, admission.user_id, count=admission.count, now=self.clock())
        if admission.event_id is not None:
            usage.remove_event(self.db, admission.event_id)

    def check_reference(self, user_id: int) -> None:
        """May the user save another picture now? Raises SetrefRateLimitedError if not."""
        per_hour = self.limits.setrefs_per_hour
        if per_hour <= 0:
            return
        now = self.clock()
        recent = usage.event_times_since(self.db, user_id, usage.REFERENCE, now - SETREF_WINDOW_S)
        if len(recent) >= per_hour:
            raise SetrefRateLimitedError(per_hour, recent[-per_hour] + SETREF_WINDOW_S - now)

    def count_reference(self, user_id: int) -> None:
        usage.record_event(self.db, user_id, usage.REFERENCE, now=self.clock())

    def remaining_today(self, user_id: int) -> int:
        return max(0, self.daily_quota(user_id) - usage.quota_used(self.db, user_id, now=self.clock()))
