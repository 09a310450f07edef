"""Transactions and time for the storage modules."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import sqlite_utils


def now() -> float:
    """Timestamps are Unix seconds (float) everywhere in storage: easy to compare and to fake."""
    return time.time()


@contextlib.contextmanager
def immediate_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """`BEGIN IMMEDIATE … COMMIT`: takes the write lock up front, so a read-then-write
    (claiming a job, running a migration) cannot race another connection.

    Inside an already open transaction it becomes a savepoint of that transaction.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")
