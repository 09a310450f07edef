"""Numbered schema migrations, applied in order and recorded in `schema_migrations`.

Each migration is a small function that changes the schema of an existing database
without losing rows. `migrate(db)` applies the ones not yet recorded, each in its own
`BEGIN IMMEDIATE` transaction together with its record, so two processes opening the
same file at once do not both apply it, and a crash leaves no half-applied step.
Never edit a released migration: add the next number.

The character references live in `reference_images` (`references` is an SQL keyword).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from storage.transactions import immediate_transaction, now


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


def _m001_core(db: sqlite_utils.Database) -> None:
    """Users, their reference pictures, cached embeddings and the job table."""
    db.table("users").create(
        {
            "id": int,
            "platform": str,
            "platform_user_id": str,
            "display_name": str,
            "created_at": float,
            "banned": int,
            "daily_quota": int,
        },
        pk="id",
        not_null={"platform", "platform_user_id", "created_at", "banned"},
        defaults={"banned": 0},
    )
    db.table("users").create_index(["platform", "platform_user_id"], unique=True)

    db.table("reference_images").create(
        {
            "id": int,
            "user_id": int,
            "sha256": str,
            "image": bytes,
            "mask": bytes,
            "mask_source": str,
            "width": int,
            "height": int,
            "created_at": float,
            "active": int,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "sha256", "image", "width", "height", "created_at", "active"},
        defaults={"active": 1},
    )
    db.table("reference_images").create_index(["user_id", "active"])
    db.table("reference_images").create_index(["sha256"])

    db.table("embeddings").create(
        {
            "id": int,
            "reference_sha256": str,
            "model_id": str,
            "settings_hash": str,
            "data": bytes,
            "meta": str,
            "created_at": float,
            "last_used_at": float,
        },
        pk="id",
        not_null={"reference_sha256", "model_id", "settings_hash", "data", "created_at", "last_used_at"},
    )
    db.table("embeddings").create_index(["reference_sha256", "model_id", "settings_hash"], unique=True)

    db.table("jobs").create(
        {
            "id": str,
            "user_id": int,
            "kind": str,
            "request": str,
            "state": str,
            "attempts": int,
            "max_attempts": int,
            "progress": str,
            "error": str,
            "result": str,
            "lease_owner": str,
            "lease_expires_at": float,
            "next_attempt_at": float,
            "created_at": float,
            "updated_at": float,
            "finished_at": float,
            "delivered_at": float,
            "chat": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={
            "user_id",
            "kind",
            "request",
            "state",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        },
        defaults={"state": "queued", "attempts": 0, "max_attempts": 3},
    )


def _m002_stickers_and_packs(db: sqlite_utils.Database) -> None:
    """Finished stickers (the RGBA PNG master) and the packs they were added to."""
    db.table("stickers").create(
        {
            "id": int,
            "user_id": int,
            "job_id": str,
            "position": int,
            "request": str,
            "emoji": str,
            "image": bytes,
            "created_at": float,
            "last_used_at": float,
            "platform_file_ids": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "image", "created_at", "last_used_at"},
        defaults={"platform_file_ids": "{}"},
    )
    db.table("stickers").create_index(["user_id", "created_at"])
    # A job that runs twice (its worker died after saving) overwrites, not duplicates.
    db.table("stickers").create_index(["job_id", "position"], unique=True)

    db.table("packs").create(
        {
            "id": int,
            "user_id": int,
            "platform": str,
            "name": str,
            "title": str,
            "sticker_count": int,
            "created_at": float,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "platform", "name", "title", "sticker_count", "created_at"},
        defaults={"sticker_count": 0},
    )
    db.table("packs").create_index(["platform", "name"], unique=True)
    db.table("packs").create_index(["user_id"])

    db.table("pack_stickers").create(
        {"pack_id": int, "sticker_id": int, "platform_file_id": str, "added_at": float},
        pk=("pack_id", "sticker_id"),
        foreign_keys=[("pack_id", "packs", "id"), ("sticker_id", "stickers", "id")],
        not_null={"added_at"},
    )
    db.table("pack_stickers").create_index(["sticker_id"])


def _m003_fair_queue(db: sqlite_utils.Database) -> None:
    """What the fair claim needs: each user's last turn, the current attempt's start,
    and indexes for the claim query."""
    db.table("users").add_column("last_claim_at", float)
    db.table("jobs").add_column("claimed_at", float)
    db.table("jobs").create_index(["state", "next_attempt_at"])
    db.table("jobs").create_index(["user_id", "state"])
    db.table("jobs").create_index(["state", "delivered_at"])


def _m004_embedding_adapter_weights(db: sqlite_utils.Database) -> None:
    """A LoRA-style concept is an embedding plus U-Net adapter weights; cache both."""
    db.table("embeddings").add_column("adapter_weights", bytes)
    db.table("embeddings").create_index(["last_used_at"])


def _m005_delivery_claims_and_daily_quota(db: sqlite_utils.Database) -> None:
    """Exactly-once delivery needs a claim with its own lease (who is sending, until when,
    how often it was tried); the daily quota needs a counter that a scheduler resets."""
    db.table("jobs").add_column("delivery_owner", str)
    db.table("jobs").add_column("delivery_expires_at", float)
    db.table("jobs").add_column("delivery_attempts", int, not_null_default=0)
    db.table("jobs").add_column("delivery_next_at", float)
    db.table("jobs").add_column("delivery_error", str)
    db.table("users").add_column("quota_used", int, not_null_default=0)
    db.table("users").add_column("quota_day", str)


def _m006_guild_settings(db: sqlite_utils.Database) -> None:
    """Per-server settings a server's managers choose (Discord): where the bot answers and
    which role may run its admin commands. Not user data: /forget leaves it."""
    db.table("guild_settings").create(
        {"platform": str, "guild_id": str, "allowed_channels": str, "admin_role_id": str, "updated_at": float},
        pk=("platform", "guild_id"),
        not_null={"allowed_channels", "updated_at"},
        defaults={"allowed_channels": "[]"},
    )


def _m007_tombstones_and_usage_events(db: sqlite_utils.Database) -> None:
    """/forget keeps what was decided about a user (ban, quota, today's count) on their row,
    marked `forgotten_at`, and the limits count requests in their own table, not in the
    jobs /forget deletes. The last hour of requests is carried over from the jobs."""
    db.table("users").add_column("forgotten_at", float)
    db.table("usage_events").create(
        {"id": int, "user_id": int, "kind": str, "at": float},
        pk="id",
        not_null={"user_id", "kind", "at"},
    )
    db.table("usage_events").create_index(["user_id", "kind", "at"])
    db.table("usage_events").create_index(["at"])
    db.execute(
        "INSERT INTO usage_events (user_id, kind, at) SELECT user_id, 'sticker', created_at FROM jobs "
        "WHERE created_at > ? ORDER BY created_at",
        [now() - 3600],
    )


def _m008_sticker_sent_records(db: sqlite_utils.Database) -> None:
    """A job's stickers go out one message each: record each one the platform accepted, so
    a delivery retried after a later one failed sends only what is missing."""
    db.table("stickers").add_column("sent_at", float)
    db.table("stickers").add_column("sent_message_id", str)


def _m009_workers(db: sqlite_utils.Database) -> None:
    """Which process uses which worker id, so a second process started with the same id is
    refused instead of expiring the first one's leases (bot/worker_identity.py)."""
    db.table("workers").create(
        {"worker_id": str, "instance": str, "host": str, "pid": int, "started_at": float, "seen_at": float},
        pk="worker_id",
        not_null={"instance", "host", "pid", "started_at", "seen_at"},
    )


def _m010_pack_orders(db: sqlite_utils.Database) -> None:
    """A /makepack: one row per pack, its sticker jobs in `jobs` (kind "pack_sticker"), and the
    pack's own delivery claim, so the finished pack is handed out once."""
    db.table("pack_orders").create(
        {
            "id": str,
            "user_id": int,
            "words": str,
            "size": int,
            "job_ids": str,
            "chat": str,
            "created_at": float,
            "delivery_owner": str,
            "delivery_expires_at": float,
            "delivered_at": float,
            "result": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
        not_null={"user_id", "words", "size", "job_ids", "created_at"},
    )
    db.table("pack_orders").create_index(["user_id", "created_at"])


def _m011_attempt_error_codes(db: sqlite_utils.Database) -> None:
    """A failed attempt keeps the error's code next to its text (`jobs.error_code`: the
    RuntimeJobError code, "timed_out", "reference_deleted"), so what the user is told is chosen
    by code, not by reading the text. Rows failed before this get the code their text stood for."""
    db.table("jobs").add_column("error_code", str)
    db.execute("UPDATE jobs SET error_code = 'timed_out' WHERE error LIKE 'timed out%'")
    db.execute(
        "UPDATE jobs SET error_code = 'reference_deleted' "
        "WHERE error LIKE '%the character of this request was deleted%'"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core", _m001_core),
    Migration(2, "stickers_and_packs", _m002_stickers_and_packs),
    Migration(3, "fair_queue", _m003_fair_queue),
    Migration(4, "embedding_adapter_weights", _m004_embedding_adapter_weights),
    Migration(5, "delivery_claims_and_daily_quota", _m005_delivery_claims_and_daily_quota),
    Migration(6, "guild_settings", _m006_guild_settings),
    Migration(7, "tombstones_and_usage_events", _m007_tombstones_and_usage_events),
    Migration(8, "sticker_sent_records", _m008_sticker_sent_records),
    Migration(9, "workers", _m009_workers),
    Migration(10, "pack_orders", _m010_pack_orders),
    Migration(11, "attempt_error_codes", _m011_attempt_error_codes),
)


def applied_migrations(db: sqlite_utils.Database) -> list[int]:
    if not db.table("schema_migrations").exists():
        return []
    return [row["id"] for row in db.query("SELECT id FROM schema_migrations ORDER BY id")]


def migrate(db: sqlite_utils.Database, *, upto: int | None = None) -> list[int]:
    """Apply the pending migrations (up to and including `upto`); returns the numbers applied.

    Safe to call on every start: what is recorded is skipped.
    """
    db.table("schema_migrations").create({"id": int, "name": str, "applied_at": float}, pk="id", if_not_exists=True)
    applied = []
    for migration in MIGRATIONS:
        if upto is not None and migration.number > upto:
            break
        with immediate_transaction(db):
            # Checked under the write lock: another process may have just applied it.
            if db.execute("SELECT 1 FROM schema_migrations WHERE id = ?", [migration.number]).fetchone():
                continue
            migration.apply(db)
            db.execute(
                "INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)",
                [migration.number, migration.name, now()],
            )
        applied.append(migration.number)
    return applied


def schema_version(db: sqlite_utils.Database) -> int:
    versions = applied_migrations(db)
    return versions[-1] if versions else 0
