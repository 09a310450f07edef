"""Housekeeping on a schedule (APScheduler): daily quota reset, retention, hung-job sweep.

- `reset_daily_quotas` — midnight UTC: every user's sticker counter goes back to zero.
- `expire_unused` — hourly: learned embeddings and stored stickers not used for
  `limits.retention_days` days are deleted (0 keeps them for ever). Use is what counts,
  not age: a cache hit refreshes an embedding; a button under a sticker, adding it to a
  pack or a server, and adding to a pack it is in refresh a sticker. A user's saved
  character (the active reference picture) is kept: an expired embedding is simply
  learned again on the next request. Old pictures that no queued or running job needs
  are deleted whatever the setting, with their embeddings. Platform packs keep their copies.
- `prune_usage` — hourly, with retention: requests older than any rate-limit window are
  dropped, and so are the tombstones /forget left once nothing on them counts any more
  (no ban, no admin quota, no sticker today, no recent request).
- `sweep_timed_out` — every minute: an attempt running longer than `job_timeout_s` plus
  one lease (its worker hangs yet still heartbeats) is failed for that attempt and
  requeued, or failed for good when no attempts are left; the worker's lease is gone
  so it stops, and the user is told through the normal delivery of failed jobs.

The jobs are coroutines, so they run on the bot's event loop thread and use its SQLite
connection one statement at a time, like every other part of the bot.
"""

from __future__ import annotations

import logging
import time

import sqlite_utils
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.policy import LONGEST_WINDOW_S
from bot.settings import Settings
from storage import embeddings, jobs, references, stickers, usage, users
from storage.transactions import now as _now

log = logging.getLogger(__name__)

DAY_S = 24 * 3600


def reset_daily_quotas(db: sqlite_utils.Database, *, now: float | None = None) -> int:
    changed = usage.reset_daily_quotas(db, now=now)
    log.info("daily quotas reset", extra={"users": changed})
    return changed


def expire_unused(db: sqlite_utils.Database, retention_days: int, *, now: float | None = None) -> dict[str, int]:
    """Delete embeddings and stickers unused for `retention_days` days, and old pictures no
    job needs; returns the counts."""
    unneeded = references.delete_unneeded_references(db)
    counts = {"embeddings": unneeded["embeddings"], "stickers": 0, "references": unneeded["references"]}
    if retention_days > 0:
        cutoff = (now if now is not None else _now()) - retention_days * DAY_S
        counts["embeddings"] += embeddings.delete_unused_since(db, cutoff)
        counts["stickers"] = stickers.delete_unused_since(db, cutoff)
    if any(counts.values()):
        log.info("retention expired unused data", extra={"days": retention_days, **counts})
    return counts


def prune_usage(db: sqlite_utils.Database, *, now: float | None = None) -> dict[str, int]:
    """Drop requests no limit counts any more, then the tombstones that kept only them."""
    at = now if now is not None else _now()
    counts = {
        "usage_events": usage.prune_events(db, at - LONGEST_WINDOW_S),
        "tombstones": users.delete_spent_tombstones(db, usage.utc_day(at)),
    }
    if any(counts.values()):
        log.info("old usage records dropped", extra=counts)
    return counts


def sweep_timed_out(db: sqlite_utils.Database, settings: Settings, *, now: float | None = None) -> list[str]:
    """Fail attempts that overran; the ids that ended failed for good (their users get told)."""
    limits = settings.limits
    failed = jobs.fail_timed_out(db, limits.job_timeout_s + limits.job_lease_s, now=now)
    if failed:
        log.warning("timed-out jobs failed", extra={"jobs": ",".join(failed)})
    return failed


def build_scheduler(db: sqlite_utils.Database, settings: Settings) -> AsyncIOScheduler:
    """The housekeeping schedule; call `.start()` inside the running event loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def quotas() -> None:
        reset_daily_quotas(db)

    async def retention() -> None:
        expire_unused(db, settings.limits.retention_days)
        prune_usage(db)

    async def timed_out() -> None:
        sweep_timed_out(db, settings)

    # coalesce + a grace: after a pause (laptop sleep, a long GC) each job runs once, late.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
    scheduler.add_job(quotas, CronTrigger(hour=0, minute=0, timezone="UTC"), id="reset_daily_quotas", **common)
    scheduler.add_job(retention, IntervalTrigger(hours=1), id="retention", next_run_time=_soon(), **common)
    scheduler.add_job(timed_out, IntervalTrigger(seconds=60), id="timed_out_jobs", **common)
    return scheduler


def _soon():
    from datetime import UTC, datetime, timedelta

    return datetime.fromtimestamp(time.time(), UTC) + timedelta(seconds=5)
