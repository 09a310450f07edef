"""Opening the database: WAL mode, foreign keys, a busy timeout, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from storage.migrations import migrate
from storage.transactions import immediate_transaction  # noqa: F401  (re-exported)

BUSY_TIMEOUT_MS = 30_000


def open_database(path: str | Path, *, run_migrations: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the bot's SQLite file and bring its schema up to date.

    The connection may be handed to another thread (`check_same_thread=False`), but it
    must not be used by two threads at once: give each concurrent worker its own
    `open_database` connection; WAL mode lets them read while one writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA foreign_keys = ON")
    db.enable_wal()
    # WAL with synchronous=NORMAL is durable across application crashes (not power loss
    # of the last transaction), and much faster than FULL for the job table's small writes.
    db.execute("PRAGMA synchronous = NORMAL")
    if run_migrations:
        migrate(db)
    return db
