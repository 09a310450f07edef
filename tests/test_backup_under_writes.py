"""`stickerbot backup` finishes while the bot writes steadily (the worker writes progress at
every step), and the copy is a consistent snapshot. (Before: the backup restarted at every
write between its small steps and never finished.)"""

from __future__ import annotations

import sqlite3

from benchmarks.durability import backup_under_writes


def test_backup_finishes_under_steady_writes_and_is_consistent(tmp_path):
    figures = backup_under_writes(tmp_path, database_mb=48, every_s=(0.01, 0.01), must_finish_in_s=20)
    assert figures["finished"], f"backup still running after 20 s of steady writes: {figures}"
    assert figures["integrity"] == "ok" and figures["rows_copied"] == 48 and figures["error"] is None
    assert figures["writes_during_backup"] > 0 and figures["ok"]
    copy = sqlite3.connect(tmp_path / "backup.sqlite")
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # standalone: no -wal beside it
    copy.close()
