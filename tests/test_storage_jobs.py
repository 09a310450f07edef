import pytest

from storage import deliveries, jobs, users
from storage.database import open_database

LEASE = 30.0


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "jobs.sqlite")


def make_user(db, name):
    return users.get_or_create_user(db, "console", name, name).id


def queue(db, user_id, n, start=0.0, **kw):
    return [jobs.create_job(db, user_id, "sticker", {"text": f"{i}"}, chat={"chat_id": user_id},
                            now=start + i * 0.001, **kw).id for i in range(n)]


def test_claim_takes_oldest_job_and_leases_it(db):
    ann = make_user(db, "ann")
    first, second = queue(db, ann, 2)
    job = jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert job.id == first
    assert job.state == "adapting"
    assert job.attempts == 1
    assert job.lease_owner == "w1"
    assert job.lease_expires_at == pytest.approx(10.0 + LEASE)
    assert job.chat == {"chat_id": ann}


def test_at_most_one_running_job_per_user(db):
    ann = make_user(db, "ann")
    queue(db, ann, 3)
    assert jobs.claim_next_job(db, "w1", LEASE, now=10.0) is not None
    assert jobs.claim_next_job(db, "w2", LEASE, now=10.0) is None


def test_users_take_turns_round_robin(db):
    heavy, light1, light2 = make_user(db, "heavy"), make_user(db, "light1"), make_user(db, "light2")
    queue(db, heavy, 5, start=0.0)  # queued first, and five of them
    queue(db, light1, 1, start=1.0)
    queue(db, light2, 2, start=2.0)
    served = []
    t = 10.0
    while (job := jobs.claim_next_job(db, "w", LEASE, now=t)) is not None:
        served.append(job.user_id)
        jobs.finish_job(db, job.id, {}, now=t)
        t += 1
    assert served == [heavy, light1, light2, heavy, light2, heavy, heavy, heavy]


def test_a_busy_users_jobs_do_not_block_others(db):
    ann, bob = make_user(db, "ann"), make_user(db, "bob")
    queue(db, ann, 3, start=0.0)
    queue(db, bob, 1, start=5.0)
    a = jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    b = jobs.claim_next_job(db, "w2", LEASE, now=10.0)
    assert (a.user_id, b.user_id) == (ann, bob)
    assert jobs.claim_next_job(db, "w3", LEASE, now=10.0) is None


def test_expired_lease_is_claimed_again_by_another_worker(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "dead-worker", LEASE, now=10.0)
    assert jobs.claim_next_job(db, "w2", LEASE, now=10.0 + LEASE - 1) is None  # still leased
    again = jobs.claim_next_job(db, "w2", LEASE, now=10.0 + LEASE + 1)
    assert again.id == job_id
    assert again.lease_owner == "w2"
    assert again.attempts == 2
    # The dead worker lost the job: its heartbeat and finish are refused.
    assert not jobs.heartbeat(db, job_id, "dead-worker", LEASE, now=50.0)
    assert not jobs.finish_job(db, job_id, {}, worker_id="dead-worker", now=50.0)
    assert not jobs.fail_job(db, job_id, "boom", retry_delay=1, worker_id="dead-worker", now=50.0)
    assert jobs.get_job(db, job_id).lease_owner == "w2"


def test_expired_job_is_reclaimed_before_the_users_newer_jobs(db):
    ann = make_user(db, "ann")
    first, _ = queue(db, ann, 2)
    jobs.claim_next_job(db, "dead", LEASE, now=10.0)
    assert jobs.claim_next_job(db, "w2", LEASE, now=100.0).id == first


def test_heartbeat_keeps_the_lease_alive(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert jobs.heartbeat(db, job_id, "w1", LEASE, now=35.0)
    assert jobs.claim_next_job(db, "w2", LEASE, now=50.0) is None
    assert jobs.get_job(db, job_id).lease_expires_at == pytest.approx(65.0)


def test_poison_job_fails_after_max_attempts_of_dying_workers(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1, max_attempts=2)
    t = 10.0
    for _ in range(2):
        assert jobs.claim_next_job(db, "w", LEASE, now=t).id == job_id
        t += LEASE + 1  # the worker dies each time
    assert jobs.claim_next_job(db, "w", LEASE, now=t) is None
    job = jobs.get_job(db, job_id)
    assert job.state == "failed"
    assert "2 attempts" in job.error
    assert [j.id for j in deliveries.undelivered_finished_jobs(db)] == [job_id]


def test_fail_job_retries_with_backoff_then_fails(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1, max_attempts=2)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.fail_job(db, job_id, "runtime down", retry_delay=20, now=11.0) is False
    job = jobs.get_job(db, job_id)
    assert (job.state, job.next_attempt_at, job.lease_owner) == ("queued", 31.0, None)
    assert jobs.claim_next_job(db, "w", LEASE, now=30.0) is None  # backoff not over
    assert jobs.claim_next_job(db, "w", LEASE, now=31.0).id == job_id
    assert jobs.fail_job(db, job_id, "runtime down again", retry_delay=20, now=32.0) is True
    job = jobs.get_job(db, job_id)
    assert (job.state, job.error, job.attempts) == ("failed", "runtime down again", 2)


def test_fail_without_retry_delay_is_final(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1, max_attempts=5)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.fail_job(db, job_id, "bad picture", now=11.0) is True
    assert jobs.get_job(db, job_id).state == "failed"


def test_finish_job_stores_result_once(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.set_state(db, job_id, "generating", worker_id="w", now=11.0)
    assert jobs.set_progress(db, job_id, {"stage": "generating", "step": 3, "total": 20}, worker_id="w", now=11.0)
    assert jobs.finish_job(db, job_id, {"sticker_ids": [1]}, now=12.0)
    assert not jobs.finish_job(db, job_id, {"sticker_ids": [2]}, now=13.0)
    job = jobs.get_job(db, job_id)
    assert (job.state, job.result, job.finished_at, job.lease_owner) == ("done", {"sticker_ids": [1]}, 12.0, None)
    assert job.progress["step"] == 3
    with pytest.raises(ValueError):
        jobs.set_state(db, job_id, "done", worker_id="w")


def test_mark_delivered_is_true_only_once(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    jobs.finish_job(db, job_id, {}, now=11.0)
    assert [j.id for j in deliveries.undelivered_finished_jobs(db)] == [job_id]
    assert deliveries.mark_delivered(db, job_id) is True
    assert deliveries.mark_delivered(db, job_id) is False
    assert deliveries.undelivered_finished_jobs(db) == []


def test_mark_delivered_from_two_connections_only_one_wins(tmp_path):
    path = tmp_path / "shared.sqlite"
    a, b = open_database(path), open_database(path)
    ann = make_user(a, "ann")
    (job_id,) = queue(a, ann, 1)
    jobs.claim_next_job(a, "w", LEASE)
    jobs.finish_job(a, job_id, {})
    assert [deliveries.mark_delivered(a, job_id), deliveries.mark_delivered(b, job_id)] == [True, False]


def test_requeue_running_on_shutdown_does_not_cost_an_attempt(db):
    ann, bob = make_user(db, "ann"), make_user(db, "bob")
    queue(db, ann, 1)
    queue(db, bob, 1, start=1.0)
    a = jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    jobs.claim_next_job(db, "w2", LEASE, now=10.0)
    assert jobs.requeue_running(db, "w1", now=11.0) == 1
    job = jobs.get_job(db, a.id)
    assert (job.state, job.attempts, job.lease_owner) == ("queued", 0, None)
    assert jobs.claim_next_job(db, "w3", LEASE, now=12.0).id == a.id


def test_queue_position_follows_round_robin(db):
    ann, bob = make_user(db, "ann"), make_user(db, "bob")
    a1, a2, a3 = queue(db, ann, 3, start=0.0)
    (b1,) = queue(db, bob, 1, start=1.0)
    assert [jobs.queue_position(db, j) for j in (a1, b1, a2, a3)] == [1, 2, 3, 4]
    jobs.claim_next_job(db, "w", LEASE, now=10.0)  # takes a1; ann goes to the back
    assert jobs.queue_position(db, a1) is None
    assert [jobs.queue_position(db, j) for j in (b1, a2, a3)] == [1, 2, 3]


def test_count_active_and_user_views(db):
    ann, bob = make_user(db, "ann"), make_user(db, "bob")
    a1, a2 = queue(db, ann, 2)
    queue(db, bob, 1, start=1.0)
    assert jobs.count_active(db) == 3
    assert jobs.count_active(db, ann) == 2
    assert [j.id for j in jobs.active_jobs_for_user(db, ann)] == [a1, a2]
    assert jobs.last_job(db, ann, kind="sticker").id == a2
    assert jobs.get_job(db, a1, user_id=bob) is None
    assert jobs.cancel_jobs(db, bob, [a1]) == []  # not bob's
    assert [j.id for j in jobs.cancel_jobs(db, ann, [a1])] == [a1]
    assert jobs.cancel_jobs(db, ann, [a1]) == []  # once
    assert jobs.count_active(db) == 2
    assert jobs.jobs_created_since(db, ann, 0.0) == 2


def test_fail_timed_out_requeues_then_fails(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1, max_attempts=2)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.fail_timed_out(db, 100, now=50.0) == []
    assert jobs.fail_timed_out(db, 100, now=111.0) == []  # requeued, one attempt left
    assert jobs.get_job(db, job_id).state == "queued"
    jobs.claim_next_job(db, "w", LEASE, now=112.0)
    assert jobs.fail_timed_out(db, 100, now=213.0) == [job_id]
    assert jobs.get_job(db, job_id).state == "failed"
    assert jobs.get_job(db, job_id).error_code == jobs.TIMED_OUT  # the user is told it took too long


def test_cancel_takes_back_several_jobs_at_once_and_nothing_for_none(db):
    ann = make_user(db, "ann")
    first, second, third = queue(db, ann, 3)
    assert jobs.cancel_jobs(db, ann, []) == []
    assert jobs.cancel_jobs(db, ann, ["no-such-job"]) == []
    assert [job.id for job in jobs.cancel_jobs(db, ann, [third, first], now=5.0)] == [first, third]
    assert [jobs.get_job(db, i).state for i in (first, second, third)] == ["cancelled", "queued", "cancelled"]


def test_a_worker_holds_its_running_job_until_it_is_cancelled_or_taken_over(db):
    ann = make_user(db, "ann")
    first, second = queue(db, ann, 2)
    jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert jobs.holds(db, first, "w1")
    assert not jobs.holds(db, first, "w2") and not jobs.holds(db, second, "w1")  # queued: nobody holds it
    jobs.cancel_jobs(db, ann, [first], now=11.0)
    assert not jobs.holds(db, first, "w1")


def test_concurrent_workers_never_claim_the_same_job(tmp_path):
    import threading

    path = tmp_path / "race.sqlite"
    setup = open_database(path)
    for u in range(10):
        queue(setup, make_user(setup, f"u{u}"), 5, start=float(u))
    claimed: list[str] = []
    lock = threading.Lock()

    def work(worker_id):
        db = open_database(path)
        while True:
            job = jobs.claim_next_job(db, worker_id, LEASE)
            if job is None:
                if jobs.count_active(db) == 0:
                    return
                continue
            with lock:
                claimed.append(job.id)
            assert jobs.finish_job(db, job.id, {}, worker_id=worker_id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(claimed) == 50
    assert len(set(claimed)) == 50


def test_release_job_gives_the_job_back_after_a_delay_and_refunds_the_attempt(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert not jobs.release_job(db, job_id, "w2", delay=5, now=11.0)  # not w2's to give back
    assert jobs.release_job(db, job_id, "w1", delay=5, now=11.0)
    job = jobs.get_job(db, job_id)
    assert (job.state, job.attempts, job.lease_owner, job.lease_expires_at) == ("queued", 0, None, None)
    assert (job.next_attempt_at, job.updated_at) == (16.0, 11.0)
    assert not jobs.release_job(db, job_id, "w1", now=12.0)  # queued: nothing to release
    assert jobs.claim_next_job(db, "w2", LEASE, now=15.999) is None
    assert jobs.claim_next_job(db, "w2", LEASE, now=16.0).attempts == 1


def test_release_job_counts_the_attempt_when_asked_and_never_waits_a_negative_delay(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w1", LEASE, now=10.0)
    assert jobs.release_job(db, job_id, "w1", delay=-30, count_attempt=True, now=11.0)
    job = jobs.get_job(db, job_id)
    assert (job.attempts, job.next_attempt_at) == (1, 11.0)
    assert jobs.claim_next_job(db, "w1", LEASE, now=11.0).attempts == 2
    assert jobs.release_job(db, job_id, "w1", now=12.0)  # no delay given: runnable at once
    assert jobs.get_job(db, job_id).next_attempt_at == 12.0


def test_create_job_stores_the_request_and_bounds_the_attempts(db):
    ann = make_user(db, "ann")
    job = jobs.create_job(db, ann, "sticker", {"text": "hi", "seed": 3}, now=5.0)
    assert (job.request, job.max_attempts, job.attempts, job.state) == ({"text": "hi", "seed": 3}, 3, 0, "queued")
    assert (job.created_at, job.updated_at, job.next_attempt_at, job.chat) == (5.0, 5.0, 5.0, None)
    assert jobs.create_job(db, ann, "sticker", {}, max_attempts=1).max_attempts == 1
    assert jobs.create_job(db, ann, "sticker", {}, max_attempts=0).max_attempts == 1  # at least one try
    assert jobs.create_job(db, ann, "sticker", {}, job_id="mine").id == "mine"


def test_claims_can_be_limited_to_the_platforms_a_worker_delivers_to(db):
    tg = users.get_or_create_user(db, "telegram", "1", "t").id
    dc = users.get_or_create_user(db, "discord", "2", "d").id
    cs = users.get_or_create_user(db, "console", "3", "c").id
    (tg_job,), (dc_job,), (cs_job,) = queue(db, tg, 1), queue(db, dc, 1, start=1.0), queue(db, cs, 1, start=2.0)
    assert jobs.claim_next_job(db, "w", LEASE, now=10.0, platforms=()) is None
    assert jobs.claim_next_job(db, "w", LEASE, now=10.0, platforms=("discord",)).id == dc_job
    assert jobs.claim_next_job(db, "w", LEASE, now=10.0, platforms=("console", "telegram")).id == tg_job
    assert jobs.claim_next_job(db, "w", LEASE, now=10.0, platforms=("console", "telegram")).id == cs_job
    assert jobs.claim_next_job(db, "w", LEASE, now=10.0, platforms=("console", "telegram", "discord")) is None


def test_every_write_uses_the_clock_it_is_given(db):
    ann = make_user(db, "ann")
    a, b = queue(db, ann, 2)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.set_state(db, a, "generating", worker_id="w", now=11.0)
    assert jobs.get_job(db, a).updated_at == 11.0
    assert jobs.set_progress(db, a, {"step": 1}, worker_id="w", now=12.0)
    assert jobs.get_job(db, a).updated_at == 12.0
    assert jobs.finish_job(db, a, {}, now=13.0)
    assert deliveries.mark_delivered(db, a, now=14.0) and jobs.get_job(db, a).delivered_at == 14.0
    assert jobs.cancel_jobs(db, ann, [b], now=15.0)
    cancelled = jobs.get_job(db, b)
    assert (cancelled.state, cancelled.finished_at, cancelled.updated_at) == ("cancelled", 15.0, 15.0)


def test_set_state_refuses_a_state_that_is_not_running_by_name(db):
    with pytest.raises(ValueError, match=r"^set_state is for running states .*'adapting'.*, got 'done'$"):
        jobs.set_state(db, "any", "done", worker_id="w")


def test_failing_a_gone_or_finished_job_is_final_and_changes_nothing(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    assert jobs.fail_job(db, "no-such-job", "x", retry_delay=1, now=1.0) is True
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    jobs.finish_job(db, job_id, {"sticker_ids": [1]}, now=11.0)
    assert jobs.fail_job(db, job_id, "late", retry_delay=1, now=12.0) is True
    job = jobs.get_job(db, job_id)
    assert (job.state, job.error, job.result) == ("done", None, {"sticker_ids": [1]})


def test_a_retry_without_delay_is_runnable_at_once(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.fail_job(db, job_id, "blip", retry_delay=0, now=11.0) is False
    assert jobs.get_job(db, job_id).next_attempt_at == 11.0
    assert jobs.claim_next_job(db, "w", LEASE, now=11.0).id == job_id


def test_the_timeout_sweep_leaves_attempts_within_their_time_and_names_the_limit(db):
    ann = make_user(db, "ann")
    (job_id,) = queue(db, ann, 1, max_attempts=2)
    jobs.claim_next_job(db, "w", LEASE, now=10.0)
    assert jobs.fail_timed_out(db, 100, now=110.0) == []
    assert jobs.get_job(db, job_id).state == "adapting"  # claimed exactly 100 s ago: not over yet
    assert jobs.fail_timed_out(db, 100, now=110.5) == []
    job = jobs.get_job(db, job_id)
    assert (job.state, job.error, job.next_attempt_at) == ("queued", "timed out after 100 s", 110.5)


def test_last_job_of_someone_with_none_is_none(db):
    ann = make_user(db, "ann")
    assert jobs.last_job(db, ann) is None and jobs.last_job(db, ann, kind="sticker") is None
    (job_id,) = queue(db, ann, 1)
    assert jobs.last_job(db, ann, kind="other") is None and jobs.last_job(db, ann).id == job_id
