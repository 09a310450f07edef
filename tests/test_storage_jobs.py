import pytest

from storage import jobs, users
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
    assert [j.id for j in jobs.undelivered_finished_jobs(db)] == [job_id]


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
    assert [j.id for j in jobs.undelivered_finished_jobs(db)] == [job_id]
    assert jobs.mark_delivered(db, job_id) is True
    assert jobs.mark_delivered(db, job_id) is False
    assert jobs.undelivered_finished_jobs(db) == []


def test_mark_delivered_from_two_connections_only_one_wins(tmp_path):
    path = tmp_path / "shared.sqlite"
    a, b = open_database(path), open_database(path)
    ann = make_user(a, "ann")
    (job_id,) = queue(a, ann, 1)
    jobs.claim_next_job(a, "w", LEASE)
    jobs.finish_job(a, job_id, {})
    assert [jobs.mark_delivered(a, job_id), jobs.mark_delivered(b, job_id)] == [True, False]


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
    assert jobs.cancel_job(db, bob, a1) is False  # not bob's
    assert jobs.cancel_job(db, ann, a1) is True
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
