"""workers: the process currently using each worker id (see bot/worker_identity.py)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.transactions import immediate_transaction


@dataclass(frozen=True)
class WorkerClaim:
    worker_id: str
    instance: str  # random per process start
    host: str
    pid: int
    started_at: float
    seen_at: float  # refreshed while the process runs


def get_claim(db: sqlite_utils.Database, worker_id: str) -> WorkerClaim | None:
    row = db.execute(
        "SELECT worker_id, instance, host, pid, started_at, seen_at FROM workers WHERE worker_id = ?",
        [worker_id],
    ).fetchone()
    return WorkerClaim(*row) if row else None


def take_claim(db: sqlite_utils.Database, claim: WorkerClaim, decide) -> WorkerClaim | None:
    """Under the write lock: `decide(current claim or None)` says whether `claim` may replace
    it; if so it is written and None returned, else the current claim is returned."""
    with immediate_transaction(db):
        current = get_claim(db, claim.worker_id)
        if current is not None and not decide(current):
            return current
        db.execute(
            "INSERT OR REPLACE INTO workers (worker_id, instance, host, pid, started_at, seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                claim.worker_id,
                claim.instance,
                claim.host,
                claim.pid,
                claim.started_at,
                claim.seen_at,
            ],
        )
    return None


def refresh_claim(db: sqlite_utils.Database, worker_id: str, instance: str, seen_at: float) -> bool:
    """False when the id is no longer this instance's (someone took it over)."""
    return (
        db.execute(
            "UPDATE workers SET seen_at = ? WHERE worker_id = ? AND instance = ?",
            [seen_at, worker_id, instance],
        ).rowcount
        == 1
    )


def release_claim(db: sqlite_utils.Database, worker_id: str, instance: str) -> None:
    db.execute(
        "DELETE FROM workers WHERE worker_id = ? AND instance = ?",
        [worker_id, instance],
    )
