"""Data lifecycle: retention, the housekeeping schedule, online backup, and upgrading an
existing database to the delivery-claim and quota columns."""

import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timezone

import sqlite_utils

from adapters.cli.backup import backup_database
from adapters.cli.commands import main as cli_main
from bot.retention import DAY_S, expire_unused, sweep_timed_out
from bot.settings import Settings
from storage import deliveries, embeddings, jobs, references, stickers, usage, users
from storage.database import open_database
from storage.migrations import MIGRATIONS, migrate

NOW = 1_700_000_000.0


def _user_with_data(db, name, *, used_at):
    user_id = users.get_or_create_user(db, "console", name).id
    ref = references.save_reference(db, user_id, f"png-{name}".encode(), None, None, width=64, height=64)
    embeddings.put_embedding(db, ref.sha256, "m", "h", b"emb", now=used_at)
    sticker = stickers.save_sticker(db, user_id, None, b"sticker", "😀", now=used_at)
    return user_id, ref, sticker


def test_retention_expires_unused_embeddings_and_stickers_but_keeps_characters(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    old_user, old_ref, old_sticker = _user_with_data(db, "old", used_at=NOW - 40 * DAY_S)
    new_user, new_ref, new_sticker = _user_with_data(db, "new", used_at=NOW - 5 * DAY_S)
    assert expire_unused(db, 0, now=NOW) == {"embeddings": 0, "stickers": 0, "references": 0}  # 0 keeps all
    assert expire_unused(db, 30, now=NOW) == {"embeddings": 1, "stickers": 1, "references": 0}
    assert not embeddings.exists(db, old_ref.sha256, "m", "h") and embeddings.exists(db, new_ref.sha256, "m", "h")
    assert stickers.get_sticker(db, old_user, old_sticker.id) is None
    assert stickers.get_sticker(db, new_user, new_sticker.id) is not None
    assert references.active_reference(db, old_user) is not None  # re-learned on the next request


def test_a_used_embedding_does_not_expire(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    _, ref, _ = _user_with_data(db, "ann", used_at=NOW - 40 * DAY_S)
    embeddings.get_embedding(db, ref.sha256, "m", "h", now=NOW - DAY_S)  # a cache hit yesterday
    assert expire_unused(db, 30, now=NOW)["embeddings"] == 0


def test_the_sweep_fails_attempts_that_overran_and_the_user_is_told_through_delivery(tmp_path):
    base = Settings()
    settings = replace(base, limits=replace(base.limits, job_timeout_s=100, job_lease_s=10))
    db = open_database(tmp_path / "bot.sqlite")
    user_id = users.get_or_create_user(db, "console", "ann").id
    job = jobs.create_job(db, user_id, "sticker", {}, max_attempts=1, now=NOW)
    jobs.claim_next_job(db, "hung-worker", 10, now=NOW)
    jobs.heartbeat(db, job.id, "hung-worker", 10, now=NOW + 105)  # it still heartbeats
    assert sweep_timed_out(db, settings, now=NOW + 105) == []  # within timeout + one lease
    assert sweep_timed_out(db, settings, now=NOW + 111) == [job.id]
    assert not jobs.heartbeat(db, job.id, "hung-worker", 10, now=NOW + 112)  # so the worker stops
    assert [j.id for j in deliveries.undelivered_finished_jobs(db, now=NOW + 112)] == [job.id]


def test_backup_is_a_consistent_copy_taken_while_the_bot_writes(tmp_path, capsys):
    path = tmp_path / "live.sqlite"
    db = open_database(path)
    user_id = users.get_or_create_user(db, "console", "ann").id
    for i in range(200):
        jobs.create_job(db, user_id, "sticker", {"n": i, "pad": "x" * 500})
    stop = threading.Event()

    def keep_writing():
        writer = open_database(path)
        n = 0
        while not stop.is_set():
            jobs.create_job(writer, user_id, "sticker", {"n": f"w{n}"})
            n += 1

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        info = backup_database(path, tmp_path / "backups" / "copy.sqlite")
    finally:
        stop.set()
        thread.join()
    assert info["tables"] >= 8
    copy = sqlite3.connect(tmp_path / "backups" / "copy.sqlite")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] >= 200
    assert not (tmp_path / "backups" / "copy.sqlite.partial").exists()


def test_stickerbot_backup_command(tmp_path, monkeypatch, capsys):
    path = tmp_path / "bot.sqlite"
    users.get_or_create_user(open_database(path), "console", "ann")
    monkeypatch.setenv("STICKERBOT_GENERAL__DATABASE", str(path))
    assert cli_main(["backup", str(tmp_path / "b.sqlite")]) == 0
    assert "backup of" in capsys.readouterr().out
    restored = open_database(tmp_path / "b.sqlite")
    assert users.find_user(restored, "console", "ann") is not None
    assert cli_main(["backup", str(path)]) == 1  # never over the live file
    monkeypatch.setenv("STICKERBOT_GENERAL__DATABASE", str(tmp_path / "missing.sqlite"))
    assert cli_main(["backup", str(tmp_path / "c.sqlite")]) == 1
    assert "no database" in capsys.readouterr().err


def test_upgrading_a_database_with_jobs_in_flight_to_delivery_claims_and_quotas(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite_utils.Database(sqlite3.connect(str(path)))
    migrate(old, upto=4)
    user = users.get_or_create_user(old, "telegram", "5", "Old")
    queued = jobs.create_job(old, user.id, "sticker", {"text": "happy"})
    finished = jobs.create_job(old, user.id, "sticker", {"text": "sad"})
    old.execute("UPDATE jobs SET state = 'done', finished_at = 1 WHERE id = ?", [finished.id])
    old.close()

    db = open_database(path)
    assert [m.number for m in MIGRATIONS][-1] >= 5
    assert {"delivery_owner", "delivery_attempts", "delivery_expires_at", "delivery_next_at",
            "delivery_error"} <= set(db["jobs"].columns_dict)
    job = jobs.get_job(db, finished.id)
    assert job.delivery_attempts == 0 and job.delivered_at is None
    assert [j.id for j in deliveries.undelivered_finished_jobs(db)] == [finished.id]  # still owed to its user
    assert deliveries.claim_delivery(db, finished.id, "w", 60) and deliveries.confirm_delivery(db, finished.id, "w")
    assert jobs.claim_next_job(db, "w", 60).id == queued.id
    assert usage.quota_used(db, user.id) == 0 and usage.take_quota(db, user.id, 1)
