"""Durability scenarios of `stickerbot bench reliability` that tests also run small.

- `backup_under_writes`: `stickerbot backup` of a big database while another connection
  writes a job's progress every 20–50 ms, as a worker does. Must hold: the backup
  finishes (within `must_finish_in_s`) and the copy passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from pathlib import Path

from adapters.cli.backup import backup_database
from storage import jobs, users
from storage.database import open_database

WRITER_ID = "steady-writer"


def fill_database(path: Path, megabytes: int) -> str:
    """A bot database of about `megabytes` MB (incompressible sticker blobs); returns the id
    of a job whose progress a writer can update."""
    db = open_database(path)
    user_id = users.get_or_create_user(db, "console", "bench").id
    job = jobs.create_job(db, user_id, "sticker", {"text": "happy"})
    jobs.claim_next_job(db, WRITER_ID, 24 * 3600.0)  # the writer holds it, as a worker would
    chunk = os.urandom(1 << 20)
    with db.conn:
        for i in range(megabytes):
            db.execute(
                "INSERT INTO stickers (user_id, image, created_at, last_used_at) VALUES (?, ?, 0, 0)",
                [user_id, chunk[i:] + chunk[:i]],
            )
    db.close()
    return job.id


class SteadyWriter(threading.Thread):
    """Another connection writing a job's progress every `every_s` seconds (a range: drawn
    anew each time), like a worker streaming the runtime's steps."""

    def __init__(self, path: Path, job_id: str, every_s: tuple[float, float], seed: int = 0) -> None:
        super().__init__(daemon=True, name="steady-writer")
        self.path, self.job_id, self.every_s = path, job_id, every_s
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0

    def run(self) -> None:
        db = open_database(self.path)
        try:
            while not self.stop.is_set():
                jobs.set_progress(db, self.job_id, {"step": self.writes}, worker_id=WRITER_ID)
                self.writes += 1
                time.sleep(self.rng.uniform(*self.every_s))
        finally:
            db.close()


def backup_under_writes(
    workdir: Path,
    *,
    database_mb: int = 120,
    every_s: tuple[float, float] = (0.02, 0.05),
    must_finish_in_s: float = 40.0,
) -> dict:
    source = workdir / "live.sqlite"
    target = workdir / "backup.sqlite"
    job_id = fill_database(source, database_mb)
    writer = SteadyWriter(source, job_id, every_s)
    writer.start()
    outcome: dict = {}

    def backup() -> None:
        try:
            outcome["info"] = backup_database(source, target)
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    thread = threading.Thread(target=backup, daemon=True, name="backup")
    thread.start()
    thread.join(must_finish_in_s)
    seconds = time.perf_counter() - started
    finished = not thread.is_alive()
    writes_during = writer.writes
    writer.stop.set()  # an endless backup ends too once the writes stop
    thread.join(300)
    writer.join(10)
    integrity = None
    if finished and "error" not in outcome:
        copy = sqlite3.connect(target)
        try:
            integrity = copy.execute("PRAGMA integrity_check").fetchone()[0]
            copied = copy.execute("SELECT COUNT(*) FROM stickers").fetchone()[0]
        finally:
            copy.close()
    else:
        copied = None
    figures = {
        "database_mb": round(source.stat().st_size / 1e6, 1),
        "write_every_ms": [round(s * 1000) for s in every_s],
        "finished": finished,
        "seconds": round(seconds, 2) if finished else None,
        "gave_up_after_s": None if finished else must_finish_in_s,
        "writes_during_backup": writes_during,
        "integrity": integrity,
        "rows_copied": copied,
        "error": outcome.get("error"),
    }
    figures["ok"] = finished and integrity == "ok" and copied == database_mb and writes_during > 0
    return figures
