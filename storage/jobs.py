"""jobs: the durable queue. SQLite is the source of truth for every sticker request.

States: queued -> adapting -> generating -> done | failed, and queued -> cancelled.
A claimed job carries a lease (owner + expiry) that its worker renews with
`heartbeat`; a job whose lease ran out (its worker died) is claimed again.
`attempts` counts claims, so a job that kills its worker every time (a poison
job) ends "failed" after `max_attempts` claims instead of looping forever.

Fairness rule of `claim_next_job` (one transaction, BEGIN IMMEDIATE):
  1. A user with a running job (adapting/generating, lease not expired) gets
     nothing more: at most one running job per user.
  2. Each other user's candidate is their job whose lease expired, else their
     oldest queued job whose `next_attempt_at` has passed (retry backoff).
  3. Among users, the one whose last claim is oldest goes first (never served
     first; ties by the candidate's age). A claim moves the user to the back,
     so users take turns round-robin, however many jobs one of them queued.

Delivering a finished job's result (its own claim) is storage/deliveries.py.
"""

from __future__ import annotations

import json
import uuid

import sqlite_utils

from storage.records import FINAL_STATES, RUNNING_STATES, Job
from storage.transactions import immediate_transaction
from storage.transactions import now as _now

_RUNNING = "('adapting', 'generating')"
# The error code of an attempt that ran out of time (the sweep below; the worker's own timeout too).
TIMED_OUT = "timed_out"
_FINAL = "('done', 'failed', 'cancelled')"


def _at(now: float | None) -> float:
    return now if now is not None else _now()


def _dump(value) -> str | None:
    return None if value is None else json.dumps(value)


def get_job(db: sqlite_utils.Database, job_id: str, *, user_id: int | None = None) -> Job | None:
    """The job by id. Code acting for a user passes `user_id`, and gets None for others' jobs."""
    sql, params = "SELECT * FROM jobs WHERE id = ?", [job_id]  # type: str, list[object]
    if user_id is not None:
        sql, params = sql + " AND user_id = ?", [job_id, user_id]
    rows = list(db.query(sql, params))
    return Job.from_row(rows[0]) if rows else None


def create_job(
    db: sqlite_utils.Database,
    user_id: int,
    kind: str,
    request: dict,
    *,
    chat: dict | None = None,
    max_attempts: int = 3,
    job_id: str | None = None,
    now: float | None = None,
) -> Job:
    at = _at(now)
    job_id = job_id or str(uuid.uuid4())
    db.execute(
        "INSERT INTO jobs (id, user_id, kind, request, state, attempts, max_attempts, next_attempt_at, "
        "created_at, updated_at, chat) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)",
        [job_id, user_id, kind, json.dumps(request), max(1, max_attempts), at, at, at, _dump(chat)],
    )
    job = get_job(db, job_id)
    assert job is not None
    return job


def claim_next_job(
    db: sqlite_utils.Database,
    worker_id: str,
    lease_seconds: float,
    *,
    now: float | None = None,
    platforms: tuple[str, ...] | None = None,
) -> Job | None:
    """Atomically take the next job by the fairness rule (module docstring); None if none is ready.

    The claimed job is "adapting", leased to `worker_id` until now + `lease_seconds`, with
    `attempts` incremented. Expired jobs that used up their attempts are failed here.
    With `platforms`, only jobs of users of those platforms are taken (a worker whose
    adapters cannot deliver elsewhere).
    """
    at = _at(now)
    params: dict = {"now": at}
    platform_filter = ""
    if platforms is not None:
        names = {f"p{i}": name for i, name in enumerate(platforms)}
        platform_filter = f"AND u.platform IN ({', '.join(':' + k for k in names) or 'NULL'})"
        params.update(names)
    with immediate_transaction(db):
        db.execute(
            f"UPDATE jobs SET state = 'failed', finished_at = :now, updated_at = :now, lease_owner = NULL, "
            f"lease_expires_at = NULL, error = COALESCE(error || '; ', '') || 'the worker stopped during all "
            f"' || attempts || ' attempts' WHERE state IN {_RUNNING} AND lease_expires_at < :now "
            f"AND attempts >= max_attempts",
            {"now": at},
        )
        row = db.execute(
            f"""
            WITH busy AS (
                SELECT DISTINCT user_id FROM jobs
                WHERE state IN {_RUNNING} AND lease_expires_at >= :now
            ),
            candidates AS (
                SELECT id, user_id, created_at, rowid AS seq,
                       ROW_NUMBER() OVER (
                           PARTITION BY user_id ORDER BY state = 'queued', created_at, rowid
                       ) AS rank_in_user
                FROM jobs
                WHERE user_id NOT IN (SELECT user_id FROM busy)
                  AND ((state = 'queued' AND next_attempt_at <= :now)
                       OR (state IN {_RUNNING} AND lease_expires_at < :now))
            )
            SELECT c.id, c.user_id FROM candidates c JOIN users u ON u.id = c.user_id
            WHERE c.rank_in_user = 1 {platform_filter}
            ORDER BY u.last_claim_at IS NOT NULL, u.last_claim_at, c.created_at, c.seq
            LIMIT 1
            """,
            params,
        ).fetchone()
        if row is None:
            return None
        job_id, user_id = row
        db.execute(
            "UPDATE jobs SET state = 'adapting', attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?, "
            "claimed_at = ?, updated_at = ? WHERE id = ?",
            [worker_id, at + lease_seconds, at, at, job_id],
        )
        db.execute("UPDATE users SET last_claim_at = ? WHERE id = ?", [at, user_id])
    return get_job(db, job_id)


def heartbeat(
    db: sqlite_utils.Database, job_id: str, worker_id: str, lease_seconds: float, *, now: float | None = None
) -> bool:
    """Extend the lease. False when this worker no longer holds the job (it expired and was
    taken by another worker, or the job was finished/cancelled/forgotten): stop working on it."""
    at = _at(now)
    cursor = db.execute(
        f"UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE id = ? AND lease_owner = ? "
        f"AND state IN {_RUNNING}",
        [at + lease_seconds, at, job_id, worker_id],
    )
    return cursor.rowcount == 1


def set_state(db: sqlite_utils.Database, job_id: str, state: str, *, worker_id: str, now: float | None = None) -> bool:
    """Move a running job between adapting and generating. False (nothing written) unless
    `worker_id` holds the job's lease: a worker that lost it does not move the job."""
    if state not in RUNNING_STATES:
        raise ValueError(f"set_state is for running states {RUNNING_STATES}, got {state!r}")
    cursor = db.execute(
        f"UPDATE jobs SET state = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state IN {_RUNNING}",
        [state, _at(now), job_id, worker_id],
    )
    return cursor.rowcount == 1


def set_progress(
    db: sqlite_utils.Database, job_id: str, progress: dict, *, worker_id: str, now: float | None = None
) -> bool:
    """The running job's latest progress event; only the lease holder's is written."""
    cursor = db.execute(
        f"UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state IN {_RUNNING}",
        [json.dumps(progress), _at(now), job_id, worker_id],
    )
    return cursor.rowcount == 1


def finish_job(
    db: sqlite_utils.Database, job_id: str, result: dict, *, worker_id: str | None = None, now: float | None = None
) -> bool:
    """Mark done with its result. False if the job was already final (or, with `worker_id`,
    is no longer leased to that worker)."""
    at = _at(now)
    sql = (
        f"UPDATE jobs SET state = 'done', result = ?, finished_at = ?, updated_at = ?, lease_owner = NULL, "
        f"lease_expires_at = NULL, error = NULL WHERE id = ? AND state NOT IN {_FINAL}"
    )
    params = [json.dumps(result), at, at, job_id]
    if worker_id is not None:
        sql, params = sql + " AND lease_owner = ?", [*params, worker_id]
    return db.execute(sql, params).rowcount == 1


def fail_job(
    db: sqlite_utils.Database,
    job_id: str,
    error: str,
    retry_delay: float | None = None,
    *,
    worker_id: str | None = None,
    now: float | None = None,
    code: str | None = None,
) -> bool:
    """Record a failed attempt, its error text and `code` (what kind of failure it was, for
    the message the user gets). With `retry_delay` (seconds) and attempts left, the job goes
    back to the queue, runnable after the delay; otherwise it ends "failed".

    Returns True when the failure is final (tell the user), False when it will be retried.
    With `worker_id`, a worker that lost its lease changes nothing and gets False.
    """
    at = _at(now)
    with immediate_transaction(db):
        row = db.execute(
            "SELECT attempts, max_attempts, state, lease_owner FROM jobs WHERE id = ?", [job_id]
        ).fetchone()
        if row is None:
            return True
        attempts, max_attempts, state, lease_owner = row
        if state in FINAL_STATES:
            return True
        if worker_id is not None and lease_owner != worker_id:
            return False
        if retry_delay is not None and attempts < max_attempts:
            db.execute(
                "UPDATE jobs SET state = 'queued', error = ?, error_code = ?, next_attempt_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                [error, code, at + max(0.0, retry_delay), at, job_id],
            )
            return False
        db.execute(
            "UPDATE jobs SET state = 'failed', error = ?, error_code = ?, finished_at = ?, updated_at = ?, "
            "lease_owner = NULL, lease_expires_at = NULL WHERE id = ?",
            [error, code, at, at, job_id],
        )
        return True


def cancel_job(db: sqlite_utils.Database, user_id: int, job_id: str, *, now: float | None = None) -> bool:
    """A user cancels their own queued job. Running jobs are not interrupted."""
    at = _at(now)
    cursor = db.execute(
        "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ? "
        "WHERE id = ? AND user_id = ? AND state = 'queued'",
        [at, at, job_id, user_id],
    )
    return cursor.rowcount == 1


def requeue_running(db: sqlite_utils.Database, worker_id: str, *, now: float | None = None) -> int:
    """Graceful shutdown: give this worker's running jobs back to the queue, runnable at once.
    The interrupted attempt is not counted against the job. Returns how many."""
    at = _at(now)
    cursor = db.execute(
        f"UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), lease_owner = NULL, "
        f"lease_expires_at = NULL, next_attempt_at = ?, updated_at = ? WHERE lease_owner = ? AND state IN {_RUNNING}",
        [at, at, worker_id],
    )
    return cursor.rowcount


def release_job(
    db: sqlite_utils.Database,
    job_id: str,
    worker_id: str,
    *,
    delay: float = 0.0,
    count_attempt: bool = False,
    now: float | None = None,
) -> bool:
    """Give one running job back to the queue, runnable after `delay` seconds. The attempt
    is not counted unless `count_attempt` (use that when the job may have caused the
    trouble; not when the runtime never received it, or on shutdown). False when this
    worker does not hold the job."""
    at = _at(now)
    refund = "" if count_attempt else "attempts = MAX(attempts - 1, 0), "
    cursor = db.execute(
        f"UPDATE jobs SET state = 'queued', {refund}lease_owner = NULL, lease_expires_at = NULL, "
        f"next_attempt_at = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state IN {_RUNNING}",
        [at + max(0.0, delay), at, job_id, worker_id],
    )
    return cursor.rowcount == 1


def expire_leases(db: sqlite_utils.Database, worker_id: str, *, now: float | None = None) -> dict[str, int]:
    """Start-up of a worker whose id is stable across restarts: whatever the previous life of
    this worker held (running jobs, delivery claims) died with it, so expire those leases now
    instead of waiting them out. The running jobs then go through `claim_next_job` like any
    other job whose worker died: the interrupted attempt counts (a job that kills its worker
    every time still ends failed), and unsent results are sent again."""
    at = _at(now)
    running = db.execute(
        f"UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE lease_owner = ? AND state IN {_RUNNING}",
        [at - 1e-3, at, worker_id],
    ).rowcount
    delivering = db.execute(
        "UPDATE jobs SET delivery_owner = NULL, delivery_expires_at = NULL, updated_at = ? "
        "WHERE delivery_owner = ? AND delivered_at IS NULL",
        [at, worker_id],
    ).rowcount
    return {"running": running, "delivering": delivering}


def fail_timed_out(db: sqlite_utils.Database, timeout_s: float, *, now: float | None = None) -> list[str]:
    """Running jobs whose current attempt started more than `timeout_s` ago (a hung worker
    that still heartbeats) are failed for this attempt: requeued at once while attempts are
    left, otherwise failed. Returns the ids of the jobs that ended failed."""
    at = _at(now)
    ids = [
        r[0]
        for r in db.execute(
            f"SELECT id FROM jobs WHERE state IN {_RUNNING} AND claimed_at < ?", [at - timeout_s]
        ).fetchall()
    ]
    return [
        job_id
        for job_id in ids
        if fail_job(db, job_id, f"timed out after {timeout_s:.0f} s", retry_delay=0, now=at, code=TIMED_OUT)
    ]


def _queued_in_fair_order(db: sqlite_utils.Database) -> list[str]:
    """All queued job ids in the order the claim rule would serve them if no job were running:
    round k serves each user's k-th queued job, users by oldest last claim."""
    rows = db.execute(
        """
        SELECT j.id,
               ROW_NUMBER() OVER (PARTITION BY j.user_id ORDER BY j.created_at, j.rowid) AS turn,
               u.last_claim_at, first_created
        FROM jobs j
        JOIN users u ON u.id = j.user_id
        JOIN (SELECT user_id, MIN(created_at) AS first_created FROM jobs WHERE state = 'queued'
              GROUP BY user_id) f ON f.user_id = j.user_id
        WHERE j.state = 'queued'
        ORDER BY turn, u.last_claim_at IS NOT NULL, u.last_claim_at, first_created, j.user_id
        """
    ).fetchall()
    return [r[0] for r in rows]


def queue_position(db: sqlite_utils.Database, job_id: str) -> int | None:
    """1-based place among queued jobs in round-robin order (see `_queued_in_fair_order`);
    None when the job is not queued. Approximate: it ignores retry backoff and which users
    are busy right now, so it is "about how many stickers are ahead of yours"."""
    order = _queued_in_fair_order(db)
    try:
        return order.index(job_id) + 1
    except ValueError:
        return None


def count_active(db: sqlite_utils.Database, user_id: int | None = None) -> int:
    """Queued plus running jobs, of everyone or of one user (for the global queue cap)."""
    sql = "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'adapting', 'generating')"
    params: list = []
    if user_id is not None:
        sql, params = sql + " AND user_id = ?", [user_id]
    return db.execute(sql, params).fetchone()[0]


def active_jobs_for_user(db: sqlite_utils.Database, user_id: int) -> list[Job]:
    return [
        Job.from_row(r)
        for r in db.query(
            "SELECT * FROM jobs WHERE user_id = ? AND state IN ('queued', 'adapting', 'generating') "
            "ORDER BY created_at, rowid",
            [user_id],
        )
    ]


def last_job(db: sqlite_utils.Database, user_id: int, *, kind: str | None = None) -> Job | None:
    sql, params = "SELECT * FROM jobs WHERE user_id = ?", [user_id]  # type: str, list[object]
    if kind is not None:
        sql, params = sql + " AND kind = ?", [user_id, kind]
    rows = list(db.query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT 1", params))
    return Job.from_row(rows[0]) if rows else None


def jobs_created_since(db: sqlite_utils.Database, user_id: int, since: float) -> int:
    """How many jobs the user created since `since` (for rate limits and daily quotas)."""
    return db.execute("SELECT COUNT(*) FROM jobs WHERE user_id = ? AND created_at >= ?", [user_id, since]).fetchone()[0]
