"""Only the worker holding a job's lease writes its state and progress: a worker whose
lease expired and was taken over cannot move the job or overwrite the new holder's progress."""

from __future__ import annotations

import pytest

from storage import jobs, users
from storage.database import open_database

LEASE = 10.0


@pytest.fixture
def taken_over(tmp_path):
    """A job claimed by worker a, whose lease ran out, then claimed by worker b."""
    db = open_database(tmp_path / "bot.sqlite")
    user_id = users.get_or_create_user(db, "console", "ann").id
    job = jobs.create_job(db, user_id, "sticker", {}, max_attempts=3, now=0.0)
    assert jobs.claim_next_job(db, "a", LEASE, now=1.0).id == job.id
    assert jobs.claim_next_job(db, "b", LEASE, now=1.0 + LEASE + 1).id == job.id
    return db, job.id


def test_a_worker_that_lost_its_lease_cannot_change_the_jobs_state(taken_over):
    db, job_id = taken_over
    assert not jobs.set_state(db, job_id, "generating", worker_id="a")
    assert jobs.get_job(db, job_id).state == "adapting"
    assert jobs.set_state(db, job_id, "generating", worker_id="b")
    assert jobs.get_job(db, job_id).state == "generating"


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_progress(taken_over):
    db, job_id = taken_over
    assert jobs.set_progress(db, job_id, {"stage": "adapting", "step": 7}, worker_id="b")
    assert not jobs.set_progress(db, job_id, {"stage": "generating", "step": 19}, worker_id="a")
    assert jobs.get_job(db, job_id).progress == {"stage": "adapting", "step": 7}


def test_nobody_writes_progress_of_a_queued_or_finished_job(taken_over):
    db, job_id = taken_over
    jobs.finish_job(db, job_id, {}, worker_id="b")
    assert not jobs.set_progress(db, job_id, {"step": 1}, worker_id="b")
    assert not jobs.set_state(db, job_id, "generating", worker_id="b")
