"""deliveries: handing out a finished job's result, under a claim of its own.

Delivery of a finished (done or failed) job is a second, short lease:
`claim_delivery` gives one worker the right to send, for `lease_seconds`;
`confirm_delivery` records that the platform accepted it (`delivered_at`);
`fail_delivery` gives the claim back with a backoff, or gives up after N tries.
A sender that dies between its claim and its confirmation leaves a claim that
expires, and the result is sent again: at least once, never lost, and twice only
if the process died in the moment between the platform's answer and the commit.
`mark_delivered` is the one-shot test-and-set for callers that need no claim.
"""

from __future__ import annotations

import sqlite_utils

from storage.records import Job
from storage.transactions import immediate_transaction
from storage.transactions import now as _now


def _at(now: float | None) -> float:
    return now if now is not None else _now()


def mark_delivered(db: sqlite_utils.Database, job_id: str, *, now: float | None = None) -> bool:
    """True only for the first call per job: whoever gets True sends the result."""
    cursor = db.execute("UPDATE jobs SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL", [_at(now), job_id])
    return cursor.rowcount == 1


def claim_delivery(
    db: sqlite_utils.Database, job_id: str, worker_id: str, lease_seconds: float, *, now: float | None = None
) -> bool:
    """The right to send this finished job's result, for `lease_seconds`. True for one
    holder at a time; False when it was delivered, another sender holds a live claim, or
    a failed send is still backing off."""
    at = _at(now)
    cursor = db.execute(
        "UPDATE jobs SET delivery_owner = ?, delivery_expires_at = ?, delivery_attempts = delivery_attempts + 1, "
        "updated_at = ? WHERE id = ? AND state IN ('done', 'failed') AND delivered_at IS NULL "
        "AND (delivery_owner IS NULL OR delivery_expires_at < ?) AND COALESCE(delivery_next_at, 0) <= ?",
        [worker_id, at + lease_seconds, at, job_id, at, at],
    )
    return cursor.rowcount == 1


def confirm_delivery(db: sqlite_utils.Database, job_id: str, worker_id: str, *, now: float | None = None) -> bool:
    """The platform accepted the result: record it. False if this worker's claim was lost
    (it expired and another sender took it) or the job is gone."""
    at = _at(now)
    cursor = db.execute(
        "UPDATE jobs SET delivered_at = ?, delivery_owner = NULL, delivery_expires_at = NULL, delivery_error = NULL, "
        "updated_at = ? WHERE id = ? AND delivery_owner = ? AND delivered_at IS NULL",
        [at, at, job_id, worker_id],
    )
    return cursor.rowcount == 1


def fail_delivery(
    db: sqlite_utils.Database,
    job_id: str,
    worker_id: str,
    error: str,
    *,
    retry_delay: float,
    max_attempts: int,
    now: float | None = None,
) -> bool:
    """A send failed. While tries are left the claim is given back, to be tried again after
    `retry_delay`; after `max_attempts` sends the job is closed as delivered-with-error
    (`delivered_at` set, `delivery_error` kept) so it is not retried for ever.
    Returns True when it gave up."""
    at = _at(now)
    with immediate_transaction(db):
        row = db.execute(
            "SELECT delivery_attempts, delivery_owner FROM jobs WHERE id = ? AND delivered_at IS NULL", [job_id]
        ).fetchone()
        if row is None or row[1] != worker_id:
            return False
        if row[0] >= max_attempts:
            db.execute(
                "UPDATE jobs SET delivered_at = ?, delivery_owner = NULL, delivery_expires_at = NULL, "
                "delivery_error = ?, updated_at = ? WHERE id = ?",
                [at, error, at, job_id],
            )
            return True
        db.execute(
            "UPDATE jobs SET delivery_owner = NULL, delivery_expires_at = NULL, delivery_next_at = ?, "
            "delivery_error = ?, updated_at = ? WHERE id = ?",
            [at + max(0.0, retry_delay), error, at, job_id],
        )
        return False


def undelivered_finished_jobs(
    db: sqlite_utils.Database, limit: int = 100, *, now: float | None = None, platforms: tuple[str, ...] | None = None
) -> list[Job]:
    """Done or failed jobs whose result was never handed out (e.g. the bot died in between),
    that nobody is sending right now and whose retry backoff is over."""
    at = _at(now)
    sql = (
        "SELECT j.* FROM jobs j JOIN users u ON u.id = j.user_id "
        "WHERE j.state IN ('done', 'failed') AND j.delivered_at IS NULL "
        "AND (j.delivery_owner IS NULL OR j.delivery_expires_at < ?) AND COALESCE(j.delivery_next_at, 0) <= ?"
    )
    params: list = [at, at]
    if platforms is not None:
        sql += f" AND u.platform IN ({','.join('?' * len(platforms)) or 'NULL'})"
        params += list(platforms)
    return [Job.from_row(r) for r in db.query(sql + " ORDER BY j.finished_at LIMIT ?", [*params, limit])]
