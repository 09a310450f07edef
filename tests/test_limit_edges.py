"""Each limit of bot/policy.py at its edge: the request just inside passes, the one just outside
is refused, and the refusal says which limit and when to come back (its code and its words).

The policy runs on a fake clock; the requests it counts are its own records (usage events and
the daily counter), so every instant here is exact.
"""

from dataclasses import replace

import pytest

from bot.errors import BusyError
from bot.policy import (
    LONGEST_WINDOW_S,
    SETREF_WINDOW_S,
    WINDOW_S,
    QuotaExceededError,
    RateLimitedError,
    RequestPolicy,
    SetrefRateLimitedError,
    UserQueueFullError,
)
from bot.settings import Settings
from storage import jobs, usage, users
from storage.database import open_database

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy_for(tmp_path, **limits):
    settings = Settings()
    settings = replace(settings, limits=replace(settings.limits, **limits))
    db = open_database(tmp_path / "limits.sqlite")
    clock = Clock()
    return RequestPolicy(db, settings, clock=clock), clock, db


def user(db, name: str = "ann") -> int:
    return users.get_or_create_user(db, "telegram", name, name).id


OFF = {"requests_per_minute": 0, "daily_quota": 1000, "queue_cap": 1000, "user_queue_cap": 0}


def test_the_windows_are_a_minute_and_an_hour():
    assert (WINDOW_S, SETREF_WINDOW_S, LONGEST_WINDOW_S) == (60.0, 3600.0, 3600.0)


def test_the_rate_limit_frees_a_slot_exactly_a_minute_after_the_oldest_request(tmp_path):
    policy, clock, db = policy_for(tmp_path, **{**OFF, "requests_per_minute": 2})
    ann = user(db)
    policy.admit(ann)
    clock.now = T0 + 20
    policy.admit(ann)
    clock.now = T0 + 59.5
    with pytest.raises(RateLimitedError) as refused:
        policy.admit(ann)
    assert refused.value.code == "rate_limited" and refused.value.retry_in_s == 1  # 0.5 s, said as 1 s
    assert refused.value.user_message == "Slow down a little: you can ask for another sticker in 1 s."
    clock.now = T0 + 30
    with pytest.raises(RateLimitedError) as refused:
        policy.admit(ann)
    assert refused.value.retry_in_s == 30  # the first request leaves the window at T0 + 60
    clock.now = T0 + 60  # the first request is a minute old: out of the window
    policy.admit(ann)
    clock.now = T0 + 79.999
    with pytest.raises(RateLimitedError):
        policy.admit(ann)
    assert policy.admit(user(db, "bob")).user_id != ann  # per user


def test_a_rate_limit_of_one_and_of_zero(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "requests_per_minute": 1})
    ann = user(db)
    policy.admit(ann)
    with pytest.raises(RateLimitedError) as refused:
        policy.admit(ann)
    assert refused.value.retry_in_s == 60
    policy.limits = replace(policy.limits, requests_per_minute=0)  # 0: no rate limit
    for _ in range(5):
        policy.admit(ann)


def test_the_daily_quota_admits_exactly_quota_stickers(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 3})
    ann = user(db)
    admissions = [policy.admit(ann) for _ in range(3)]
    assert [(a.quota, a.used_today) for a in admissions] == [(3, 1), (3, 2), (3, 3)]
    assert policy.remaining_today(ann) == 0
    with pytest.raises(QuotaExceededError) as refused:
        policy.admit(ann)
    assert refused.value.code == "quota" and refused.value.quota == 3
    assert refused.value.user_message == ("You have had your 3 stickers for today. "
                                          "The counter resets at midnight (UTC).")
    assert usage.request_times_since(db, ann, 0) == [T0, T0, T0]  # a refused request is not counted
    policy.refund(admissions[0])
    assert policy.remaining_today(ann) == 1 and len(usage.request_times_since(db, ann, 0)) == 2
    policy.admit(ann)


def test_a_quota_of_zero_switches_stickers_off_with_its_own_words(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 0})
    with pytest.raises(QuotaExceededError) as refused:
        policy.admit(user(db))
    assert refused.value.user_message == "Making stickers is switched off for your account. Ask the bot's admin."


def test_an_admins_quota_for_one_user_beats_the_default(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 1})
    ann, bob = user(db), user(db, "bob")
    users.set_daily_quota(db, ann, 2)
    assert (policy.daily_quota(ann), policy.daily_quota(bob)) == (2, 1)
    policy.admit(ann)
    policy.admit(ann)
    with pytest.raises(QuotaExceededError):
        policy.admit(ann)
    assert policy.daily_quota(10_000) == 1  # an unknown user gets the default


def queued(db, user_id: int, n: int) -> None:
    for _ in range(n):
        jobs.create_job(db, user_id, "sticker", {}, now=T0)


def test_the_global_queue_cap_is_busy_at_the_cap_not_before(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "queue_cap": 3})
    ann, bob = user(db), user(db, "bob")
    queued(db, bob, 2)
    policy.admit(ann)  # 2 active < 3
    queued(db, bob, 1)
    with pytest.raises(BusyError) as refused:
        policy.admit(ann)
    assert refused.value.code == "busy" and "busy" in refused.value.user_message
    assert usage.quota_used(db, ann, now=T0) == 1  # the busy refusal counted nothing


def test_the_per_user_cap_counts_only_that_users_jobs(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "user_queue_cap": 2})
    ann, bob = user(db), user(db, "bob")
    queued(db, ann, 1)
    queued(db, bob, 5)
    policy.admit(ann)
    queued(db, ann, 1)
    with pytest.raises(UserQueueFullError) as refused:
        policy.admit(ann)
    assert refused.value.code == "user_queue_full" and refused.value.cap == 2
    assert refused.value.user_message.startswith("You already have 2 stickers on the way.")
    policy.limits = replace(policy.limits, user_queue_cap=0)  # 0: no per-user cap
    policy.admit(ann)


def test_setref_limit_frees_a_slot_exactly_an_hour_after_the_oldest_picture(tmp_path):
    policy, clock, db = policy_for(tmp_path, setrefs_per_hour=2)
    ann = user(db)
    policy.check_reference(ann)
    policy.count_reference(ann)
    clock.now = T0 + 600
    policy.check_reference(ann)
    policy.count_reference(ann)
    clock.now = T0 + 3599
    with pytest.raises(SetrefRateLimitedError) as refused:
        policy.check_reference(ann)
    assert refused.value.code == "setref_rate_limited" and refused.value.retry_in_s == 1
    assert refused.value.user_message == ("You have changed your character 2 times in the last hour. "
                                          "You can save a new one in 1 min.")
    clock.now = T0 + 1200
    with pytest.raises(SetrefRateLimitedError) as refused:
        policy.check_reference(ann)
    assert "in 40 min." in refused.value.user_message
    clock.now = T0 + 3600
    policy.check_reference(ann)
    assert usage.event_times_since(db, ann, usage.REFERENCE, 0) == [T0, T0 + 600]
    assert usage.request_times_since(db, ann, 0) == []  # pictures are not stickers


def test_a_setref_limit_of_zero_is_no_limit(tmp_path):
    policy, _clock, db = policy_for(tmp_path, setrefs_per_hour=0)
    ann = user(db)
    for _ in range(20):
        policy.check_reference(ann)
        policy.count_reference(ann)


def test_limits_apply_in_order_busy_then_own_queue_then_rate_then_quota(tmp_path):
    policy, _clock, db = policy_for(tmp_path, requests_per_minute=1, daily_quota=1, queue_cap=2, user_queue_cap=1)
    ann = user(db)
    policy.admit(ann)  # now rate-limited and out of quota
    with pytest.raises(RateLimitedError):
        policy.admit(ann)
    queued(db, ann, 1)
    with pytest.raises(UserQueueFullError):
        policy.admit(ann)
    queued(db, user(db, "bob"), 1)
    with pytest.raises(BusyError):
        policy.admit(ann)

