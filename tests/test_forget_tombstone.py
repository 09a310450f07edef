"""/forget deletes a user's data but not the decisions about them: an admin's ban and quota,
today's sticker count and the recent requests the rate limits count survive it, on a
tombstone row that holds no personal data (only the platform's id, to recognise them)."""

import pytest

from bot.admin import AdminService
from bot.errors import UserError
from bot.policy import QuotaExceededError, RateLimitedError
from bot.retention import prune_usage
from storage import usage, users
from tests.test_reliability_policy import (
    ANN,
    BOB,
    DAY,
    ask,
    make_service,
    with_character,
)

PERSONAL_TABLES = ("reference_images", "jobs", "stickers", "packs")


def forget_and_come_back(service, person=ANN):
    assert service.forget(person)
    with_character(service, person)


def test_a_quota_switched_off_by_an_admin_stays_off_after_forget(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=0)
    AdminService(service.db, service.settings).set_quota("telegram", ANN.platform_user_id, 0)
    with_character(service, ANN)
    forget_and_come_back(service)
    with pytest.raises(QuotaExceededError) as refused:
        ask(service, ANN, clock)
    assert "switched off" in refused.value.user_message


def test_todays_count_survives_forget(tmp_path):
    service, clock = make_service(tmp_path, daily_quota=2, requests_per_minute=0)
    with_character(service, ANN)
    ask(service, ANN, clock)
    ask(service, ANN, clock)
    forget_and_come_back(service)
    with pytest.raises(QuotaExceededError):
        ask(service, ANN, clock)
    clock.now += DAY  # a new UTC day starts at zero, as for anyone
    ask(service, ANN, clock)


def test_the_rate_limit_still_counts_requests_made_before_forget(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=2)
    with_character(service, ANN)
    ask(service, ANN, clock)
    ask(service, ANN, clock)
    forget_and_come_back(service)
    with pytest.raises(RateLimitedError):
        ask(service, ANN, clock)


def test_a_banned_users_quota_override_is_kept_too(tmp_path):
    service, _ = make_service(tmp_path, requests_per_minute=0)
    admin = AdminService(service.db, service.settings)
    admin.set_quota("telegram", BOB.platform_user_id, 3)
    with_character(service, BOB)
    admin.ban("telegram", BOB.platform_user_id)
    assert service.forget(BOB)
    summary = admin.unban("telegram", BOB.platform_user_id)
    assert summary.daily_quota == 3 and summary.quota_overridden


def test_the_tombstone_holds_no_personal_data(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=0)
    with_character(service, ANN)
    ask(service, ANN, clock)
    user_id = service.user_id(ANN)
    service.forget(ANN)
    row = service.db.execute("SELECT * FROM users WHERE id = ?", [user_id]).fetchone()
    record = users.get_user(service.db, user_id)
    assert row is not None and record.display_name is None and record.forgotten_at is not None
    for table in PERSONAL_TABLES:
        assert service.db.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", [user_id]).fetchone()[0] == 0
    assert usage.quota_used(service.db, user_id, now=clock.now) == 1
    # Coming back, they are the same user again (the limits apply) and no longer forgotten.
    assert service.user_id(ANN) == user_id and users.get_user(service.db, user_id).forgotten_at is None


def test_a_user_with_nothing_to_keep_is_deleted_entirely(tmp_path):
    service, clock = make_service(tmp_path)
    with_character(service, ANN)  # a character, but no sticker asked and no decision about them
    user_id = service.user_id(ANN)
    clock.now += 2 * 3600  # the /setref no longer counts for its hourly limit
    service.forget(ANN)
    assert users.get_user(service.db, user_id) is None


def test_housekeeping_removes_a_tombstone_once_nothing_on_it_counts_any_more(tmp_path):
    service, clock = make_service(tmp_path, requests_per_minute=2)
    admin = AdminService(service.db, service.settings)
    with_character(service, ANN, BOB)
    ask(service, ANN, clock)
    ask(service, BOB, clock)
    admin.ban("telegram", BOB.platform_user_id)
    ann_id, bob_id = (
        service.user_id(ANN),
        users.find_user(service.db, "telegram", BOB.platform_user_id).id,
    )
    service.forget(ANN)
    service.forget(BOB)
    prune_usage(service.db, now=clock.now + 60)
    assert users.get_user(service.db, ann_id) is not None  # today's count still matters
    prune_usage(service.db, now=clock.now + DAY)
    assert users.get_user(service.db, ann_id) is None  # a new day: nothing left to remember
    assert users.get_user(service.db, bob_id).banned  # a ban is kept for ever


def test_forget_does_not_reset_the_setref_limit(tmp_path):
    service, _ = make_service(tmp_path, setrefs_per_hour=1)
    with_character(service, ANN)
    service.forget(ANN)
    with pytest.raises(UserError) as refused:
        with_character(service, ANN)
    assert refused.value.code == "setref_rate_limited"
