"""Per-user limits beside the global ones: a cap on one user's queued stickers, so that two
users cannot fill the oven for everyone."""

from dataclasses import replace

import pytest

from benchmarks.bench_reliability import character_png
from bot.errors import UserError
from bot.messages import UserRef
from bot.service import StickerService
from bot.settings import Settings
from storage import jobs
from storage.database import open_database

ANN = UserRef("telegram", "101", "Ann")
BOB = UserRef("telegram", "202", "Bob")


def make_service(tmp_path, **limits):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, requests_per_minute=0, **limits))
    service = StickerService(open_database(tmp_path / "bot.sqlite"), settings)
    for i, person in enumerate((ANN, BOB)):
        service.set_reference(person, character_png(i))
    return service


def test_one_user_cannot_queue_more_than_their_cap_and_is_told_why(tmp_path):
    service = make_service(tmp_path, user_queue_cap=3, queue_cap=10)
    for _ in range(3):
        service.request_sticker(ANN, "happy waving", {})
    with pytest.raises(UserError) as refused:
        service.request_sticker(ANN, "happy waving", {})
    assert refused.value.code == "user_queue_full"
    assert "3 stickers" in refused.value.user_message and "busy" not in refused.value.user_message
    assert jobs.count_active(service.db, service.user_id(ANN)) == 3
    # Another user is not affected, and the refused request cost Ann nothing of today's quota.
    service.request_sticker(BOB, "sad sitting", {})
    assert service.policy.remaining_today(service.user_id(ANN)) == service.settings.limits.daily_quota - 3


def test_a_finished_job_frees_a_place_in_the_users_queue(tmp_path):
    service = make_service(tmp_path, user_queue_cap=1)
    first = service.request_sticker(ANN, "happy waving", {})
    with pytest.raises(UserError):
        service.request_sticker(ANN, "happy waving", {})
    job = jobs.claim_next_job(service.db, "w", 60)
    assert job.id == first.job_id
    jobs.finish_job(service.db, job.id, {}, worker_id="w")
    service.request_sticker(ANN, "happy waving", {})


def test_zero_turns_the_per_user_cap_off(tmp_path):
    service = make_service(tmp_path, user_queue_cap=0)
    for _ in range(12):
        service.request_sticker(ANN, "happy waving", {})
    assert jobs.count_active(service.db) == 12
