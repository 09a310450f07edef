"""Limits (rate, daily quota, queue cap, prompt, upload, blocklist), admin rights and
per-user data isolation, through the service layer the adapters call."""

import io
from dataclasses import replace

import pytest
from PIL import Image

from benchmarks.bench_reliability import character_png
from bot.admin import AdminService
from bot.errors import BusyError, UserError
from bot.messages import UserRef
from bot.policy import QuotaExceededError, RateLimitedError
from bot.retention import reset_daily_quotas
from bot.service import StickerService
from bot.settings import Settings
from storage import jobs, references, stickers, usage, users
from storage.database import open_database

ANN = UserRef("telegram", "101", "Ann")
BOB = UserRef("telegram", "202", "Bob")
DAY = 24 * 3600.0


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def make_service(tmp_path, **limits):
    base = Settings()
    settings = replace(base, general=replace(base.general, database=str(tmp_path / "bot.sqlite")),
                       limits=replace(base.limits, **limits),
                       telegram=replace(base.telegram, admin_ids=(101,)), discord=replace(base.discord, admin_ids=(7,)))
    db = open_database(settings.general.database)
    service = StickerService(db, settings)
    clock = Clock()
    service.policy.clock = clock
    return service, clock


def with_character(service, *people):
    for i, person in enumerate(people):
        service.set_reference(person, character_png(i))


def ask(service, person=ANN, clock=None):
    """One /mysticker; the job row gets the policy clock's time (the rate limit counts jobs)."""
    queued = service.request_sticker(person, "happy waving", {})
    if clock is not None:
        service.db.execute("UPDATE jobs SET created_at = ? WHERE id = ?", [clock.now, queued.job_id])
    return queued


def test_rate_limit_counts_a_sliding_minute_and_says_when_to_come_back(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=2)
    with_character(service, ANN, BOB)
    ask(service, ANN, clock)
    clock.now += 20
    ask(service, ANN, clock)
    clock.now += 10
    with pytest.raises(RateLimitedError) as refused:
        ask(service, ANN, clock)
    assert refused.value.retry_in_s == 30 and "30 s" in refused.value.user_message
    ask(service, BOB, clock)  # the limit is per user
    clock.now += 30
    ask(service, ANN, clock)  # the first request left the window


def test_daily_quota_refuses_with_a_friendly_message_and_the_scheduler_resets_it(tmp_path):
    service, clock = make_service(tmp_path, daily_quota=2, requests_per_minute=0)
    with_character(service, ANN)
    ask(service, ANN, clock)
    ask(service, ANN, clock)
    with pytest.raises(QuotaExceededError) as refused:
        ask(service, ANN, clock)
    assert "2 stickers for today" in refused.value.user_message and refused.value.code == "quota"
    user_id = users.find_user(service.db, "telegram", "101").id
    assert usage.quota_used(service.db, user_id, now=clock.now) == 2
    reset_daily_quotas(service.db, now=clock.now)  # what the midnight APScheduler job runs
    assert usage.quota_used(service.db, user_id, now=clock.now) == 0
    ask(service, ANN, clock)


def test_a_new_utc_day_starts_at_zero_even_if_the_reset_job_did_not_run(tmp_path):
    service, clock = make_service(tmp_path, daily_quota=1, requests_per_minute=0)
    with_character(service, ANN)
    ask(service, ANN, clock)
    with pytest.raises(QuotaExceededError):
        ask(service, ANN, clock)
    clock.now += DAY
    ask(service, ANN, clock)


def test_an_admin_quota_overrides_the_default_and_zero_switches_stickers_off(tmp_path):
    service, clock = make_service(tmp_path, daily_quota=1, requests_per_minute=0)
    with_character(service, ANN, BOB)
    admin = AdminService(service.db, service.settings)
    admin.set_quota("telegram", "101", 3)
    admin.set_quota("telegram", "202", 0)
    for _ in range(3):
        ask(service, ANN, clock)
    with pytest.raises(QuotaExceededError):
        ask(service, ANN, clock)
    with pytest.raises(QuotaExceededError) as off:
        ask(service, BOB, clock)
    assert "switched off" in off.value.user_message


def test_global_queue_cap_says_busy_and_counts_nothing(tmp_path):
    service, clock = make_service(tmp_path, queue_cap=2, requests_per_minute=0)
    with_character(service, ANN, BOB)
    ask(service, ANN, clock)
    ask(service, BOB, clock)
    with pytest.raises(BusyError) as busy:
        ask(service, ANN, clock)
    assert "try again in a minute" in busy.value.user_message
    user_id = users.find_user(service.db, "telegram", "101").id
    assert usage.quota_used(service.db, user_id, now=clock.now) == 1  # the refused one was not counted


def test_quota_is_given_back_when_the_job_cannot_be_created(tmp_path, monkeypatch):
    service, clock = make_service(tmp_path, daily_quota=5, requests_per_minute=0)
    with_character(service, ANN)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs, "create_job", broken)
    with pytest.raises(RuntimeError):
        ask(service, ANN, clock)
    user_id = users.find_user(service.db, "telegram", "101").id
    assert usage.quota_used(service.db, user_id, now=clock.now) == 0


def test_prompt_length_and_blocklist_are_refused_before_anything_is_queued(tmp_path):
    service, _ = make_service(tmp_path, max_prompt_chars=30, blocklist=("badword",))
    with_character(service, ANN)
    with pytest.raises(UserError) as too_long:
        service.request_sticker(ANN, "happy " * 10, {})
    assert "limit is 30" in too_long.value.user_message
    for text in ("happy BADWORD beach", "happy Bädword", "sad, badword!"):  # case, accents, punctuation
        with pytest.raises(UserError) as blocked:
            service.request_sticker(ANN, text, {})
        assert blocked.value.code == "blocked"
    assert jobs.count_active(service.db) == 0


def test_upload_byte_and_pixel_limits_apply_to_setref(tmp_path):
    service, _ = make_service(tmp_path, max_upload_bytes=5_000, max_upload_pixels=100 * 100)
    big = io.BytesIO()
    Image.new("RGB", (101, 100), "red").save(big, format="PNG")
    with pytest.raises(UserError) as pixels:
        service.set_reference(ANN, big.getvalue())
    assert pixels.value.code == "image_too_large"
    with pytest.raises(UserError) as size:
        service.set_reference(ANN, b"\x89PNG" + bytes(6_000))
    assert size.value.code == "image_too_big"
    assert service.db.execute("SELECT COUNT(*) FROM reference_images").fetchone()[0] == 0


def test_banned_users_are_refused_everything(tmp_path):
    service, _ = make_service(tmp_path)
    AdminService(service.db, service.settings).ban("telegram", "202")
    with pytest.raises(UserError) as banned:
        service.set_reference(BOB, character_png(1))
    assert banned.value.code == "banned"


def test_admin_rights_only_for_configured_ids_on_their_own_platform(tmp_path):
    service, _ = make_service(tmp_path)
    admin = AdminService(service.db, service.settings)
    assert admin.is_admin("telegram", 101) and admin.is_admin("telegram", "101")
    assert not admin.is_admin("telegram", 202)
    assert not admin.is_admin("discord", 101)  # a Telegram admin id means nothing on Discord
    assert admin.is_admin("discord", "7") and not admin.is_admin("telegram", 7)
    assert not admin.is_admin("console", "101") and not admin.is_admin("telegram", "101 ")


def test_users_cannot_reach_each_others_data(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=0)
    with_character(service, ANN)
    ann_job = ask(service, ANN, clock).job_id
    ann_id = users.find_user(service.db, "telegram", "101").id
    ann_ref = references.active_reference(service.db, ann_id)
    sticker = stickers.save_sticker(service.db, ann_id, ann_job, character_png(3), "😀", {}, position=0)
    bob_id = service.user_id(BOB)
    # Every per-user read and write is scoped by the caller's own id.
    assert references.get_reference(service.db, bob_id, ann_ref.id) is None
    assert stickers.get_sticker(service.db, bob_id, sticker.id) is None
    assert stickers.stickers_for_job(service.db, bob_id, ann_job) == []
    assert not stickers.delete_sticker(service.db, bob_id, sticker.id)
    assert not stickers.set_platform_file_id(service.db, bob_id, sticker.id, "telegram", "x")
    assert jobs.get_job(service.db, ann_job, user_id=bob_id) is None
    assert jobs.cancel_jobs(service.db, bob_id, [ann_job]) == []
    # Through the service: Bob's status, /cancel, /again and /forget see only Bob.
    assert "Nothing in the queue" in service.status(BOB)
    assert service.cancel(BOB, everything=True) == []
    assert jobs.get_job(service.db, ann_job).state == "queued"
    with pytest.raises(UserError) as no_last:
        service.again(BOB, {})
    assert no_last.value.code == "no_last"
    service.forget(BOB)
    assert references.active_reference(service.db, ann_id) is not None
    assert jobs.get_job(service.db, ann_job) is not None
    assert stickers.get_sticker(service.db, ann_id, sticker.id) is not None
    # Same picture, two users: Bob forgetting his copy leaves Ann's cached embedding alone.
    service.set_reference(BOB, character_png(0))
    service.db.execute("INSERT INTO embeddings (reference_sha256, model_id, settings_hash, data, created_at, "
                       "last_used_at) VALUES (?, 'm', 'h', x'00', 0, 0)", [ann_ref.sha256])
    service.forget(BOB)
    assert service.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1
