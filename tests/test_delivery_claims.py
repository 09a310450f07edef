"""Delivery claims (storage/jobs.py): a finished job's result is sent by one worker at a time.

"Never sent by two workers at once" rests on three checks, each pinned here on its own,
with the clock given explicitly (`now=`) so that a lease's edge is an exact instant:
`claim_delivery` refuses while another sender's claim is live, `confirm_delivery` and
`fail_delivery` accept only the claim's holder, and a given-up or delivered job is never
claimed again.
"""

import threading

import pytest

from storage import deliveries, jobs, users
from storage.database import open_database

LEASE = 30.0


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "claims.sqlite")


def finished_job(db, name="ann", *, state="done", at=10.0) -> str:
    user = users.get_or_create_user(db, "console", name, name).id
    job = jobs.create_job(db, user, "sticker", {"text": "hi"}, now=at - 5)
    jobs.claim_next_job(db, "runner", LEASE, now=at - 4)
    if state == "done":
        assert jobs.finish_job(db, job.id, {"sticker_ids": [1]}, now=at)
    else:
        assert jobs.fail_job(db, job.id, "runtime down", now=at)
    return job.id


def test_a_live_claim_excludes_every_other_sender_until_its_last_instant(db):
    job_id = finished_job(db)
    assert deliveries.claim_delivery(db, job_id, "a", LEASE, now=100.0)
    assert not deliveries.claim_delivery(db, job_id, "b", LEASE, now=100.0)
    assert not deliveries.claim_delivery(db, job_id, "a", LEASE, now=101.0)  # not even its holder twice
    assert not deliveries.claim_delivery(db, job_id, "b", LEASE, now=100.0 + LEASE)  # expires at 130: still live
    assert jobs.get_job(db, job_id).delivery_attempts == 1
    # Just past the expiry the claim is dead, and the next sender takes it.
    assert deliveries.claim_delivery(db, job_id, "b", LEASE, now=100.0 + LEASE + 0.001)
    job = jobs.get_job(db, job_id)
    assert job.delivery_attempts == 2


def test_only_the_holder_of_the_claim_confirms_it(db):
    job_id = finished_job(db)
    assert deliveries.claim_delivery(db, job_id, "a", LEASE, now=100.0)
    assert not deliveries.confirm_delivery(db, job_id, "b", now=101.0)
    assert jobs.get_job(db, job_id).delivered_at is None
    assert deliveries.confirm_delivery(db, job_id, "a", now=102.0)
    assert jobs.get_job(db, job_id).delivered_at == 102.0
    assert not deliveries.confirm_delivery(db, job_id, "a", now=103.0)  # once
    assert not deliveries.claim_delivery(db, job_id, "b", LEASE, now=1e6)  # delivered: never again
    assert deliveries.undelivered_finished_jobs(db, now=1e6) == []


def test_a_sender_whose_claim_was_taken_over_can_neither_confirm_nor_fail_it(db):
    job_id = finished_job(db)
    assert deliveries.claim_delivery(db, job_id, "slow", LEASE, now=100.0)
    assert deliveries.claim_delivery(db, job_id, "fast", LEASE, now=200.0)  # slow's claim expired at 130
    assert not deliveries.confirm_delivery(db, job_id, "slow", now=201.0)
    assert not deliveries.fail_delivery(db, job_id, "slow", "late error", retry_delay=5, max_attempts=5, now=201.0)
    job = jobs.get_job(db, job_id)
    assert (job.delivered_at, job.delivery_error) == (None, None)
    assert deliveries.confirm_delivery(db, job_id, "fast", now=202.0)


def test_a_failed_send_backs_off_then_anyone_may_claim_again(db):
    job_id = finished_job(db)
    assert deliveries.claim_delivery(db, job_id, "a", LEASE, now=100.0)
    assert deliveries.fail_delivery(db, job_id, "a", "429 Too Many Requests", retry_delay=20, max_attempts=3,
                              now=101.0) is False
    job = jobs.get_job(db, job_id)
    assert (job.delivery_error, job.delivered_at) == ("429 Too Many Requests", None)
    assert not deliveries.claim_delivery(db, job_id, "b", LEASE, now=120.999)  # backoff ends at 121
    assert deliveries.undelivered_finished_jobs(db, now=120.999) == []
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=121.0)] == [job_id]
    assert deliveries.claim_delivery(db, job_id, "b", LEASE, now=121.0)
    # A claim that was given back with no backoff is claimable at once.
    assert deliveries.fail_delivery(db, job_id, "b", "reset", retry_delay=-5, max_attempts=3, now=122.0) is False
    assert deliveries.claim_delivery(db, job_id, "c", LEASE, now=122.0)


def test_delivery_gives_up_after_max_attempts_and_keeps_the_error(db):
    job_id = finished_job(db, state="failed")
    for attempt, at in enumerate((100.0, 200.0, 300.0), start=1):
        assert deliveries.claim_delivery(db, job_id, "a", LEASE, now=at)
        gave_up = deliveries.fail_delivery(db, job_id, "a", f"blocked #{attempt}", retry_delay=1, max_attempts=3, now=at)
        assert gave_up is (attempt == 3)
    job = jobs.get_job(db, job_id)
    assert (job.delivered_at, job.delivery_error, job.delivery_attempts) == (300.0, "blocked #3", 3)
    assert not deliveries.claim_delivery(db, job_id, "a", LEASE, now=1e6)
    assert not deliveries.fail_delivery(db, job_id, "a", "again", retry_delay=1, max_attempts=3, now=1e6)


def test_only_finished_jobs_can_be_claimed_for_delivery(db):
    user = users.get_or_create_user(db, "console", "bob", "bob").id
    queued = jobs.create_job(db, user, "sticker", {}, now=1.0)
    assert not deliveries.claim_delivery(db, queued.id, "a", LEASE, now=2.0)
    jobs.claim_next_job(db, "runner", LEASE, now=3.0)
    assert not deliveries.claim_delivery(db, queued.id, "a", LEASE, now=4.0)  # running
    assert jobs.cancel_jobs(db, user, [jobs.create_job(db, user, "sticker", {}, now=5.0).id], now=6.0)
    cancelled = jobs.last_job(db, user)
    assert cancelled.state == "cancelled" and not deliveries.claim_delivery(db, cancelled.id, "a", LEASE, now=7.0)
    assert not deliveries.claim_delivery(db, "no-such-job", "a", LEASE, now=7.0)
    assert deliveries.claim_delivery(db, finished_job(db, "cat", state="failed"), "a", LEASE, now=20.0)


def test_undelivered_lists_what_nobody_is_sending_oldest_first_and_by_platform(db):
    first = finished_job(db, "ann", at=10.0)
    second = finished_job(db, "bob", at=11.0)
    third = finished_job(db, "cat", at=12.0)
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=50.0)] == [first, second, third]
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, limit=2, now=50.0)] == [first, second]
    assert deliveries.claim_delivery(db, second, "a", LEASE, now=50.0)
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=50.0 + LEASE)] == [first, third]
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=50.001 + LEASE)] == [first, second, third]
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=50.0, platforms=("console",))] == [first, third]
    assert deliveries.undelivered_finished_jobs(db, now=50.0, platforms=("telegram",)) == []
    assert deliveries.undelivered_finished_jobs(db, now=50.0, platforms=()) == []


def test_expire_leases_releases_only_this_workers_unconfirmed_claims(db):
    mine, theirs, sent = finished_job(db, "ann"), finished_job(db, "bob"), finished_job(db, "cat")
    assert deliveries.claim_delivery(db, mine, "w1", LEASE, now=100.0)
    assert deliveries.claim_delivery(db, theirs, "w2", LEASE, now=100.0)
    assert deliveries.claim_delivery(db, sent, "w1", LEASE, now=100.0) and deliveries.confirm_delivery(db, sent, "w1", now=100.0)
    assert jobs.expire_leases(db, "w1", now=101.0) == {"running": 0, "delivering": 1}
    assert deliveries.claim_delivery(db, mine, "w1-restarted", LEASE, now=101.0)
    assert not deliveries.claim_delivery(db, theirs, "w1-restarted", LEASE, now=101.0)
    assert jobs.get_job(db, sent).delivered_at == 100.0


def test_two_connections_racing_for_one_result_get_one_claim(tmp_path):
    path = tmp_path / "race.sqlite"
    setup = open_database(path)
    job_ids = [finished_job(setup, f"u{i}") for i in range(20)]
    won: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    start = threading.Barrier(4)

    def sender(worker_id: str) -> None:
        db = open_database(path)
        start.wait()
        for job_id in job_ids:
            if deliveries.claim_delivery(db, job_id, worker_id, LEASE, now=100.0):
                won[job_id].append(worker_id)
                assert deliveries.confirm_delivery(db, job_id, worker_id, now=100.0)

    threads = [threading.Thread(target=sender, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(len(winners) == 1 for winners in won.values()), won


def test_expire_leases_makes_this_workers_running_jobs_claimable_at_once(db):
    user = users.get_or_create_user(db, "console", "ann", "ann").id
    job = jobs.create_job(db, user, "sticker", {}, now=1.0)
    jobs.claim_next_job(db, "w1", LEASE, now=2.0)
    assert jobs.expire_leases(db, "w1", now=10.0) == {"running": 1, "delivering": 0}
    expired = jobs.get_job(db, job.id)
    assert expired.lease_expires_at == pytest.approx(10.0 - 1e-3, abs=1e-9) and expired.updated_at == 10.0
    again = jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert again.id == job.id and again.attempts == 2  # the interrupted attempt counts


def test_undelivered_lists_a_hundred_by_default_and_filters_by_several_platforms(db):
    for i in range(101):
        finished_job(db, f"u{i}", at=10.0 + i)
    assert len(deliveries.undelivered_finished_jobs(db, now=1e4)) == 100
    assert len(deliveries.undelivered_finished_jobs(db, now=1e4, platforms=("console", "telegram"))) == 100
