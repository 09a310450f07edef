"""`stickerbot backup PATH`: a consistent copy of the live database, while the bot runs.

SQLite's online backup API (`sqlite3.Connection.backup`) copies the database in one step
(`pages=-1`), inside one read transaction: in WAL mode the bot's writers go on meanwhile,
and the copy is the snapshot of the moment the step began. (Copying in small steps
instead restarts the whole copy whenever another connection writes between two steps;
with the worker writing progress every few tens of milliseconds it never finished.)
The copy is written next to PATH first and renamed into place only after
`PRAGMA integrity_check` passed, so PATH is either the previous file or a complete new
backup, never half of one.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path


def backup_database(source: str | Path, target: str | Path) -> dict:
    source, target = Path(source), Path(target)
    if not source.exists():
        raise FileNotFoundError(f"no database at {source}")
    if target.resolve() == source.resolve():
        raise ValueError("the backup must not overwrite the live database")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    src = sqlite3.connect(str(source), timeout=30)  # only read from; WAL readers do not block the bot
    try:
        dst = sqlite3.connect(str(partial))
        try:
            src.backup(dst, pages=-1)  # one step: writers never restart it (module docstring)
            # A standalone file: no -wal beside it to lose when it is copied elsewhere.
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            tables = dst.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the copy failed its integrity check: {check}")
    os.replace(partial, target)
    return {"path": str(target), "bytes": target.stat().st_size, "tables": tables,
            "seconds": round(time.perf_counter() - started, 3)}


def run(args, settings) -> int:
    try:
        info = backup_database(settings.general.database, args.path)
    except (FileNotFoundError, ValueError, RuntimeError, sqlite3.Error, OSError) as exc:
        print(f"error: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backup of {settings.general.database} written to {info['path']} "
          f"({info['bytes'] // 1024} KiB, {info['tables']} tables, {info['seconds']} s)")
    return 0
