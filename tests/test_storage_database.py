import sqlite3

import sqlite_utils

from storage import users
from storage.database import open_database
from storage.migrations import MIGRATIONS, applied_migrations, migrate, schema_version


def test_open_database_creates_parent_dir_and_uses_wal(tmp_path):
    db = open_database(tmp_path / "nested" / "dir" / "bot.sqlite")
    assert (tmp_path / "nested" / "dir" / "bot.sqlite").exists()
    assert db.journal_mode == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_all_migrations_are_recorded_in_order(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    assert applied_migrations(db) == [m.number for m in MIGRATIONS]
    assert [m.number for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert schema_version(db) == MIGRATIONS[-1].number
    for table in ("users", "reference_images", "embeddings", "jobs", "stickers", "packs", "pack_stickers"):
        assert db[table].exists(), table


def test_reopening_runs_nothing_and_keeps_rows(tmp_path):
    path = tmp_path / "bot.sqlite"
    db = open_database(path)
    users.get_or_create_user(db, "telegram", "42", "Ann")
    db.close()
    db = open_database(path)
    assert migrate(db) == []
    assert users.find_user(db, "telegram", "42").display_name == "Ann"


def test_upgrade_from_first_schema_keeps_data(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite_utils.Database(sqlite3.connect(str(path)))
    assert migrate(old, upto=1) == [1]
    assert not old["stickers"].exists()
    assert "last_claim_at" not in old["users"].columns_dict
    old.execute("INSERT INTO users (platform, platform_user_id, display_name, created_at, banned) "
                "VALUES ('discord', '7', 'Old', 1.0, 0)")
    old.execute("INSERT INTO jobs (id, user_id, kind, request, state, attempts, max_attempts, next_attempt_at, "
                "created_at, updated_at) VALUES ('j1', 1, 'sticker', '{}', 'queued', 0, 3, 1.0, 1.0, 1.0)")
    old.close()

    db = open_database(path)
    assert applied_migrations(db) == [m.number for m in MIGRATIONS]
    assert users.find_user(db, "discord", "7").display_name == "Old"
    assert "last_claim_at" in db["users"].columns_dict
    assert "adapter_weights" in db["embeddings"].columns_dict
    from storage import jobs

    claimed = jobs.claim_next_job(db, "w", 30)
    assert claimed is not None and claimed.id == "j1"


def test_two_connections_can_open_the_same_file(tmp_path):
    path = tmp_path / "bot.sqlite"
    first = open_database(path)
    second = open_database(path)
    users.get_or_create_user(first, "console", "a")
    assert users.find_user(second, "console", "a") is not None
