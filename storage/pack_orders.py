"""pack_orders: a whole pack from one /makepack, as one row plus a group of durable jobs.

`create_order` writes the order and its `size` sticker jobs (kind "pack_sticker", each
knowing its order and position) in one transaction: a pack is queued whole or not at all.
The jobs run like any other (fair turns, leases, retries), so a crash resumes the pack
where it stopped: finished stickers stay finished, and a repeated job replaces its sticker
(keyed by job and position), never duplicates it.

The finished pack is handed out under its own claim, like a job's delivery
(`claim_delivery` -> send -> `confirm_delivery`, or `release_delivery` to retry later),
because any of its jobs' deliveries may be the one that finds the pack complete.
"""

from __future__ import annotations

import json
import uuid

import sqlite_utils

from storage import jobs
from storage.records import Job, PackOrder
from storage.transactions import immediate_transaction
from storage.transactions import now as _now

MEMBER_KIND = "pack_sticker"


def _at(now: float | None) -> float:
    return now if now is not None else _now()


def create_order(
    db: sqlite_utils.Database,
    user_id: int,
    words: str,
    payloads: list[dict],
    *,
    chat: dict | None = None,
    max_attempts: int = 3,
    now: float | None = None,
) -> PackOrder:
    """The order and one queued job per payload (in pack order), atomically."""
    at = _at(now)
    order_id = str(uuid.uuid4())
    with immediate_transaction(db):
        job_ids = []
        for position, payload in enumerate(payloads):
            member = {**payload, "pack_order": order_id, "pack_position": position, "pack_size": len(payloads)}
            # Created a microsecond apart so the queue keeps the pack's order.
            job = jobs.create_job(
                db, user_id, MEMBER_KIND, member, chat=chat, max_attempts=max_attempts, now=at + position * 1e-6
            )
            job_ids.append(job.id)
        db.execute(
            "INSERT INTO pack_orders (id, user_id, words, size, job_ids, chat, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                order_id,
                user_id,
                words,
                len(payloads),
                json.dumps(job_ids),
                None if chat is None else json.dumps(chat),
                at,
            ],
        )
    order = get_order(db, order_id)
    assert order is not None
    return order


def get_order(db: sqlite_utils.Database, order_id: str, *, user_id: int | None = None) -> PackOrder | None:
    sql, params = "SELECT * FROM pack_orders WHERE id = ?", [order_id]  # type: str, list[object]
    if user_id is not None:
        sql, params = sql + " AND user_id = ?", [order_id, user_id]
    rows = list(db.query(sql, params))
    return PackOrder.from_row(rows[0]) if rows else None


def order_of(db: sqlite_utils.Database, job: Job) -> PackOrder | None:
    """The order a pack job belongs to; None for other jobs (or a forgotten order)."""
    if job.kind != MEMBER_KIND or not job.request.get("pack_order"):
        return None
    return get_order(db, job.request["pack_order"], user_id=job.user_id)


def member_jobs(db: sqlite_utils.Database, order: PackOrder) -> list[Job]:
    """The order's jobs in pack order (those still stored)."""
    found = {j.id: j for j in (jobs.get_job(db, job_id, user_id=order.user_id) for job_id in order.job_ids) if j}
    return [found[job_id] for job_id in order.job_ids if job_id in found]


def last_order(db: sqlite_utils.Database, user_id: int) -> PackOrder | None:
    rows = list(
        db.query("SELECT * FROM pack_orders WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", [user_id])
    )
    return PackOrder.from_row(rows[0]) if rows else None


def active_requests(db: sqlite_utils.Database, user_id: int) -> int:
    """The user's queued or running requests, a pack counting once (its jobs share an order)."""
    return db.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT CASE WHEN kind = ? THEN json_extract(request, '$.pack_order') "
        "ELSE id END FROM jobs WHERE user_id = ? AND state IN ('queued', 'adapting', 'generating'))",
        [MEMBER_KIND, user_id],
    ).fetchone()[0]


def claim_delivery(
    db: sqlite_utils.Database, order_id: str, worker_id: str, lease_seconds: float, *, now: float | None = None
) -> bool:
    """The right to hand out the finished pack, for `lease_seconds`; one holder at a time,
    and never again once confirmed."""
    at = _at(now)
    cursor = db.execute(
        "UPDATE pack_orders SET delivery_owner = ?, delivery_expires_at = ? WHERE id = ? AND delivered_at IS NULL "
        "AND (delivery_owner IS NULL OR delivery_expires_at < ?)",
        [worker_id, at + lease_seconds, order_id, at],
    )
    return cursor.rowcount == 1


def confirm_delivery(
    db: sqlite_utils.Database, order_id: str, worker_id: str, result: dict, *, now: float | None = None
) -> bool:
    cursor = db.execute(
        "UPDATE pack_orders SET delivered_at = ?, delivery_owner = NULL, delivery_expires_at = NULL, result = ? "
        "WHERE id = ? AND delivery_owner = ? AND delivered_at IS NULL",
        [_at(now), json.dumps(result), order_id, worker_id],
    )
    return cursor.rowcount == 1


def release_delivery(db: sqlite_utils.Database, order_id: str, worker_id: str) -> bool:
    """A send failed: give the claim back so the next try (the job's delivery retry) may send."""
    cursor = db.execute(
        "UPDATE pack_orders SET delivery_owner = NULL, delivery_expires_at = NULL "
        "WHERE id = ? AND delivery_owner = ? AND delivered_at IS NULL",
        [order_id, worker_id],
    )
    return cursor.rowcount == 1
