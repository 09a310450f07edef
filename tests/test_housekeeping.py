"""bot/retention.py pinned: retention at its edge (a day's last second), what each job logs for
the operator, and the schedule itself (when, how often, what happens after a pause). The
schedule's jobs are run on the event loop and awaited by their effect, not by a time window."""

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.policy import LONGEST_WINDOW_S
from bot.retention import (
    DAY_S,
    build_scheduler,
    expire_unused,
    prune_usage,
    reset_daily_quotas,
    sweep_timed_out,
)
from bot.settings import Settings
from storage import embeddings, jobs, references, stickers, usage, users
from storage.database import open_database
from storage.forget import forget_user

NOW = 1_750_000_000.0


def owner_of_data(db, name: str, used_at: float):
    user_id = users.get_or_create_user(db, "console", name).id
    ref = references.save_reference(db, user_id, f"png-{name}".encode(), None, None, width=64, height=64)
    embeddings.put_embedding(db, ref.sha256, "m", "h", b"emb", now=used_at)
    sticker = stickers.save_sticker(db, user_id, None, b"sticker", "😀", now=used_at)
    return user_id, ref, sticker


def test_retention_keeps_what_was_used_within_the_last_n_days_to_the_second(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    assert DAY_S == 86_400
    _, edge_ref, edge_sticker = owner_of_data(db, "edge", used_at=NOW - 30 * DAY_S)  # exactly 30 days
    _, old_ref, _ = owner_of_data(db, "old", used_at=NOW - 30 * DAY_S - 1)
    assert expire_unused(db, 30, now=NOW) == {"embeddings": 1, "stickers": 1, "references": 0}
    assert embeddings.exists(db, edge_ref.sha256, "m", "h") and not embeddings.exists(db, old_ref.sha256, "m", "h")
    assert db.execute("SELECT id FROM stickers").fetchall() == [(edge_sticker.id,)]


def test_retention_also_counts_the_old_pictures_it_removed_with_their_embeddings(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    user_id, first, _ = owner_of_data(db, "ann", used_at=NOW)
    second = references.save_reference(db, user_id, b"png-second", None, None, width=64, height=64)
    embeddings.put_embedding(db, second.sha256, "m", "h", b"emb", now=NOW - 2 * DAY_S)  # the active one, unused
    assert expire_unused(db, 0, now=NOW) == {"embeddings": 1, "stickers": 0, "references": 1}  # first is old
    assert not embeddings.exists(db, first.sha256, "m", "h")


def test_a_retention_of_one_day_expires_what_was_unused_for_a_day(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    owner_of_data(db, "ann", used_at=NOW - DAY_S - 1)
    assert expire_unused(db, 1, now=NOW) == {"embeddings": 1, "stickers": 1, "references": 0}


def test_resetting_the_quotas_twice_at_the_same_moment_changes_nothing_the_second_time(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    ann = users.get_or_create_user(db, "console", "ann").id
    users.get_or_create_user(db, "console", "bob")
    usage.take_quota(db, ann, 5, now=NOW)
    assert reset_daily_quotas(db, now=NOW) == 2  # ann's count, and bob's first day
    assert reset_daily_quotas(db, now=NOW) == 0
    assert usage.quota_used(db, ann, now=NOW) == 0
    assert db.execute("SELECT DISTINCT quota_day FROM users").fetchall() == [(usage.utc_day(NOW),)]
    assert reset_daily_quotas(db, now=NOW + DAY_S) == 2  # the next day starts for both


def test_retention_adds_the_embeddings_it_expired_to_those_of_the_pictures_it_removed(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    user_id, _, _ = owner_of_data(db, "ann", used_at=NOW)
    second = references.save_reference(db, user_id, b"png-second", None, None, width=64, height=64)
    embeddings.put_embedding(db, second.sha256, "m", "h", b"emb", now=NOW - 31 * DAY_S)  # the active one, unused
    assert expire_unused(db, 30, now=NOW) == {"embeddings": 2, "stickers": 0, "references": 1}


def test_the_sweep_names_every_failed_job_in_one_warning(tmp_path, caplog):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, job_timeout_s=100, job_lease_s=10))
    db = open_database(tmp_path / "bot.sqlite")
    owners = [users.get_or_create_user(db, "console", name).id for name in ("ann", "bob")]
    ids = {jobs.create_job(db, owner, "sticker", {}, max_attempts=1, now=NOW).id for owner in owners}
    jobs.claim_next_job(db, "w1", 10, now=NOW)
    jobs.claim_next_job(db, "w2", 10, now=NOW)
    caplog.set_level(logging.INFO, logger="bot.retention")
    assert set(sweep_timed_out(db, settings, now=NOW + 200)) == ids
    (record,) = caplog.records
    assert set(record.jobs.split(",")) == ids


def test_each_housekeeping_job_tells_the_operator_what_it_did(tmp_path, caplog):
    db = open_database(tmp_path / "bot.sqlite")
    user_id, _, _ = owner_of_data(db, "ann", used_at=NOW - 100 * DAY_S)
    usage.take_quota(db, user_id, 5, now=NOW)
    usage.record_event(db, user_id, usage.STICKER, now=NOW - LONGEST_WINDOW_S - 1)
    caplog.set_level(logging.INFO, logger="bot.retention")

    assert reset_daily_quotas(db, now=NOW) == 1
    assert expire_unused(db, 90, now=NOW) == {"embeddings": 1, "stickers": 1, "references": 0}
    assert expire_unused(db, 90, now=NOW) == {"embeddings": 0, "stickers": 0, "references": 0}  # quiet: no line
    assert prune_usage(db, now=NOW) == {"usage_events": 1, "tombstones": 0}
    assert prune_usage(db, now=NOW) == {"usage_events": 0, "tombstones": 0}  # quiet
    lines = [(r.levelname, r.getMessage(), {k: getattr(r, k) for k in ("users", "days", "embeddings", "stickers",
                                                                        "references", "usage_events", "tombstones")
                                            if hasattr(r, k)}) for r in caplog.records]
    assert lines == [
        ("INFO", "daily quotas reset", {"users": 1}),
        ("INFO", "retention expired unused data", {"days": 90, "embeddings": 1, "stickers": 1, "references": 0}),
        ("INFO", "old usage records dropped", {"usage_events": 1, "tombstones": 0}),
    ]


def test_the_sweep_waits_the_job_timeout_plus_one_lease_and_warns_with_the_job_ids(tmp_path, caplog):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, job_timeout_s=100, job_lease_s=10))
    db = open_database(tmp_path / "bot.sqlite")
    user_id = users.get_or_create_user(db, "console", "ann").id
    job = jobs.create_job(db, user_id, "sticker", {}, max_attempts=1, now=NOW)
    jobs.claim_next_job(db, "hung", 10, now=NOW)
    caplog.set_level(logging.INFO, logger="bot.retention")
    assert sweep_timed_out(db, settings, now=NOW + 110) == []  # claimed 110 s ago: not past 100 + 10
    assert caplog.records == []
    assert sweep_timed_out(db, settings, now=NOW + 110.5) == [job.id]
    assert [(r.levelname, r.getMessage(), r.jobs) for r in caplog.records] == [
        ("WARNING", "timed-out jobs failed", job.id)]


def test_prune_usage_keeps_requests_inside_the_longest_window_and_the_tombstones_they_hold(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    user_id = users.get_or_create_user(db, "console", "ann").id
    usage.record_event(db, user_id, usage.STICKER, now=NOW - LONGEST_WINDOW_S)  # exactly the window: kept
    forget_user(db, user_id, now=NOW, counted_since=NOW - LONGEST_WINDOW_S)
    assert prune_usage(db, now=NOW) == {"usage_events": 0, "tombstones": 0}
    assert users.get_user(db, user_id) is not None
    assert prune_usage(db, now=NOW + 1) == {"usage_events": 1, "tombstones": 1}
    assert users.get_user(db, user_id) is None


def test_a_tombstone_with_a_sticker_counted_today_stays_until_the_day_is_over(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    user_id = users.get_or_create_user(db, "console", "ann").id
    usage.take_quota(db, user_id, 5, now=NOW)
    forget_user(db, user_id, now=NOW, counted_since=NOW)  # no request counts any more, today's sticker does
    assert prune_usage(db, now=NOW) == {"usage_events": 0, "tombstones": 0}
    assert prune_usage(db, now=NOW + DAY_S) == {"usage_events": 0, "tombstones": 1}


def test_the_schedule_midnight_utc_hourly_and_every_minute_each_once_after_a_pause(tmp_path, monkeypatch, request):
    monkeypatch.setenv("TZ", "America/New_York")  # the machine's zone must not matter
    time.tzset()
    request.addfinalizer(lambda: (monkeypatch.undo(), time.tzset()))  # the zone back for the tests after
    db = open_database(tmp_path / "bot.sqlite")
    before = datetime.now(UTC)
    scheduler = build_scheduler(db, Settings())
    after = datetime.now(UTC)
    assert str(scheduler.timezone) == "UTC"
    by_id = {job.id: job for job in scheduler.get_jobs()}
    assert set(by_id) == {"reset_daily_quotas", "retention", "timed_out_jobs"}
    cron = by_id["reset_daily_quotas"].trigger
    assert isinstance(cron, CronTrigger) and str(cron.timezone) == "UTC"
    fields = {f.name: str(f) for f in cron.fields}
    assert (fields["hour"], fields["minute"], fields["second"]) == ("0", "0", "0")
    hourly, minutely = by_id["retention"].trigger, by_id["timed_out_jobs"].trigger
    assert isinstance(hourly, IntervalTrigger) and hourly.interval == timedelta(hours=1)
    assert isinstance(minutely, IntervalTrigger) and minutely.interval == timedelta(seconds=60)
    # Retention first runs 5 s after the start (not an hour later); the others on their trigger.
    first = by_id["retention"].next_run_time
    assert before + timedelta(seconds=5) <= first <= after + timedelta(seconds=5)
    for job in by_id.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600), job.id


async def wait_until(condition, timeout: float = 60.0) -> None:
    """Event-based: poll until `condition()` holds; the timeout only catches a job that never runs."""
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def housekeeping_bed(tmp_path):
    """A database with one of everything each job acts on, all long before the real clock."""
    base = Settings()
    settings = replace(base, limits=replace(base.limits, retention_days=30, job_timeout_s=1, job_lease_s=1))
    db = open_database(tmp_path / "bot.sqlite")
    user_id, ref, _ = owner_of_data(db, "ann", used_at=NOW - 40 * DAY_S)
    usage.take_quota(db, user_id, 5)
    usage.record_event(db, user_id, usage.STICKER, now=NOW)  # long before any window of the real clock
    job = jobs.create_job(db, user_id, "sticker", {}, max_attempts=1, now=NOW)
    jobs.claim_next_job(db, "hung", 3600, now=NOW)  # claimed long ago (the real clock is later)

    def done() -> dict[str, bool]:
        return {"quota reset": usage.quota_used(db, user_id) == 0,
                "embedding expired": not embeddings.exists(db, ref.sha256, "m", "h"),
                "hung job failed": jobs.get_job(db, job.id).state == "failed",
                "old requests pruned": usage.request_times_since(db, user_id, 0) == []}

    return db, settings, done


async def test_each_scheduled_job_does_its_work_with_the_bots_database_and_settings(tmp_path):
    db, settings, done = housekeeping_bed(tmp_path)
    scheduler = build_scheduler(db, settings)
    assert not any(done().values())
    for job_id in ("reset_daily_quotas", "retention", "timed_out_jobs"):
        await scheduler.get_job(job_id).func()  # the job's own coroutine, run here
    assert all(done().values()), done()


async def test_the_scheduled_jobs_run_on_the_event_loop_and_do_their_work(tmp_path):
    db, settings, done = housekeeping_bed(tmp_path)
    scheduler = build_scheduler(db, settings)
    scheduler.start()
    try:
        moment = datetime.now(UTC)
        for job_id in ("reset_daily_quotas", "retention", "timed_out_jobs"):
            scheduler.get_job(job_id).modify(next_run_time=moment)
        await wait_until(lambda: all(done().values()))  # one wait for all four effects
    finally:
        scheduler.shutdown(wait=False)
