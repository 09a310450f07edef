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
    Admission,
    PackQuotaError,
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



# -- a pack against the daily quota and the queue cap (/makepack N counts N stickers) ----------

def test_a_pack_that_fits_the_days_quota_exactly_is_admitted_and_counts_each_sticker(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 6})
    ann = user(db)
    policy.admit(ann)
    pack = policy.admit(ann, count=5)
    assert pack == Admission(ann, 6, 6, pack.event_id, 5) and pack.event_id is not None
    assert usage.request_times_since(db, ann, 0) == [T0, T0]  # one request each against the rate limit
    assert policy.remaining_today(ann) == 0
    policy.refund(pack)  # the pack was not queued after all: all five come back
    assert policy.remaining_today(ann) == 5 and usage.quota_used(db, ann, now=T0) == 1


def test_a_pack_one_over_what_is_left_is_refused_with_what_is_left(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 6})
    ann = user(db)
    policy.admit(ann, count=3)
    with pytest.raises(PackQuotaError) as refused:
        policy.admit(ann, count=4)
    assert (refused.value.code, refused.value.size, refused.value.left) == ("quota", 4, 3)
    assert refused.value.user_message == (
        "A pack of 4 stickers counts 4 against your daily quota, and you have 3 left today. "
        "Ask for a smaller pack (e.g. /makepack 3) or try again after midnight (UTC).")
    assert usage.quota_used(db, ann, now=T0) == 3  # the refused pack counted nothing


def test_a_pack_of_two_past_a_quota_of_one_and_a_pack_with_nothing_left(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 1})
    ann = user(db)
    with pytest.raises(PackQuotaError) as refused:
        policy.admit(ann, count=2)
    assert (refused.value.size, refused.value.left) == (2, 1)
    assert refused.value.user_message == (  # the singular form, as written for one left
        "A pack of 2 stickers counts 2 against your daily quota, and you have 1 left today. "
        "Ask for a smaller pack (e.g. /makepack 1) or try again after midnight (UTC).")
    policy.admit(ann)
    with pytest.raises(PackQuotaError) as refused:
        policy.admit(ann, count=2)
    assert refused.value.left == 0
    assert refused.value.user_message == ("You have had all your stickers for today. "
                                          "The counter resets at midnight (UTC).")


def test_a_pack_when_stickers_are_switched_off_says_so(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 0})
    with pytest.raises(QuotaExceededError) as refused:
        policy.admit(user(db), count=3)
    assert not isinstance(refused.value, PackQuotaError)
    assert refused.value.user_message == "Making stickers is switched off for your account. Ask the bot's admin."


def test_a_quota_of_one_is_said_as_one_sticker_used(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 1})
    ann = user(db)
    policy.admit(ann)
    with pytest.raises(QuotaExceededError) as refused:
        policy.admit(ann)
    assert refused.value.user_message == ("You have had your 1 sticker for today. "
                                          "The counter resets at midnight (UTC).")


def test_a_pack_counts_its_size_against_the_global_queue_cap(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "queue_cap": 5})
    ann = user(db)
    queued(db, ann, 2)
    with pytest.raises(BusyError):
        policy.admit(ann, count=4)  # 2 + 4 > 5
    assert policy.admit(ann, count=3).count == 3  # 2 + 3 = 5: at the cap, admitted


def test_remaining_today_reads_the_users_own_quota(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "daily_quota": 1})
    ann = user(db)
    users.set_daily_quota(db, ann, 5)
    policy.admit(ann)
    assert policy.remaining_today(ann) == 4


def test_the_per_user_queue_cap_message_word_for_word(tmp_path):
    policy, _clock, db = policy_for(tmp_path, **{**OFF, "user_queue_cap": 1})
    ann = user(db)
    queued(db, ann, 1)
    with pytest.raises(UserQueueFullError) as refused:
        policy.admit(ann)
    assert refused.value.user_message == "You already have 1 sticker on the way. Wait for it to arrive, then ask again."


def test_the_setref_wait_is_rounded_up_to_whole_minutes(tmp_path):
    policy, clock, db = policy_for(tmp_path, setrefs_per_hour=1)
    ann = user(db)
    policy.count_reference(ann)
    clock.now = T0 + 3539  # 61 s to go: said as 2 min, never as 1
    with pytest.raises(SetrefRateLimitedError) as refused:
        policy.check_reference(ann)
    assert refused.value.retry_in_s == 61 and "in 2 min." in refused.value.user_message


# -- the counters behind the limits (storage/usage.py) -----------------------------------------

def test_the_utc_day_is_the_calendar_date_in_utc():
    assert usage.utc_day(T0) == "2023-11-14"
    assert usage.utc_day(1_699_999_199.0) == "2023-11-14"  # 21:59:59 UTC
    assert usage.utc_day(1_700_006_399.0) == "2023-11-14" and usage.utc_day(1_700_006_400.0) == "2023-11-15"


def test_a_counter_of_another_day_reads_zero_and_an_unknown_user_zero(tmp_path):
    _policy, _clock, db = policy_for(tmp_path)
    ann = user(db)
    assert usage.take_quota(db, ann, 3, now=T0)  # one, by default
    assert usage.quota_used(db, ann, now=T0) == 1
    assert usage.quota_used(db, ann, now=T0 + 86_400) == 0  # tomorrow, before any reset
    assert usage.quota_used(db, 10_000, now=T0) == 0


def test_take_quota_never_counts_past_the_limit_nor_for_a_limit_of_zero(tmp_path):
    _policy, _clock, db = policy_for(tmp_path)
    ann = user(db)
    assert not usage.take_quota(db, ann, 3, count=4, now=T0)  # a new day: still not past the limit
    assert not usage.take_quota(db, ann, 0, count=0, now=T0)  # a limit of 0 is off: nothing at all
    assert usage.quota_used(db, ann, now=T0) == 0
    assert usage.take_quota(db, ann, 3, count=3, now=T0) and not usage.take_quota(db, ann, 3, now=T0)


def test_refund_gives_back_one_by_default_and_never_below_zero(tmp_path):
    _policy, _clock, db = policy_for(tmp_path)
    ann = user(db)
    usage.take_quota(db, ann, 5, count=3, now=T0)
    usage.refund_quota(db, ann, now=T0)
    assert usage.quota_used(db, ann, now=T0) == 2
    usage.refund_quota(db, ann, count=5, now=T0)
    assert usage.quota_used(db, ann, now=T0) == 0


def test_the_midnight_reset_writes_the_given_day_and_a_second_reset_changes_nothing(tmp_path):
    _policy, _clock, db = policy_for(tmp_path)
    ann = user(db)
    usage.take_quota(db, ann, 5, count=2, now=T0)
    midnight = 1_700_006_400.0
    assert usage.reset_daily_quotas(db, now=midnight) == 1
    assert db.execute("SELECT quota_used, quota_day FROM users WHERE id = ?", [ann]).fetchone() == (0, "2023-11-15")
    assert usage.reset_daily_quotas(db, now=midnight) == 0


def test_an_event_recorded_without_a_time_is_at_the_current_time(tmp_path):
    import time

    _policy, _clock, db = policy_for(tmp_path)
    ann = user(db)
    before = time.time()
    usage.record_event(db, ann, usage.STICKER)
    (at,) = usage.request_times_since(db, ann, 0)
    assert before <= at <= time.time()


def test_one_change_an_hour_is_told_in_the_singular():
    refused = SetrefRateLimitedError(per_hour=1, retry_in_s=90)
    assert refused.user_message == ("You have changed your character 1 time in the last hour. "
                                    "You can save a new one in 2 min.")
