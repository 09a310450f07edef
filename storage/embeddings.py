"""embeddings: the learned concept, cached per (reference sha256, model id, settings hash).

The key is content-addressed: the same picture under the same model and adaptation
settings never adapts twice, and a change of model or settings misses the cache.
"""

from __future__ import annotations

import json

import sqlite_utils

from storage.records import Embedding
from storage.transactions import immediate_transaction
from storage.transactions import now as _now


def get_embedding(
    db: sqlite_utils.Database,
    reference_sha256: str,
    model_id: str,
    settings_hash: str,
    *,
    touch: bool = True,
    now: float | None = None,
) -> Embedding | None:
    """The cached embedding or None; a hit refreshes `last_used_at` (retention keeps used ones)."""
    key = [reference_sha256, model_id, settings_hash]
    if touch:
        db.execute(
            "UPDATE embeddings SET last_used_at = ? WHERE reference_sha256 = ? AND model_id = ? AND settings_hash = ?",
            [now if now is not None else _now(), *key],
        )
    rows = list(
        db.query("SELECT * FROM embeddings WHERE reference_sha256 = ? AND model_id = ? AND settings_hash = ?", key)
    )
    return Embedding.from_row(rows[0]) if rows else None


def exists(db: sqlite_utils.Database, reference_sha256: str, model_id: str, settings_hash: str) -> bool:
    """Is it cached? Does not count as a use."""
    return (
        db.execute(
            "SELECT 1 FROM embeddings WHERE reference_sha256 = ? AND model_id = ? AND settings_hash = ?",
            [reference_sha256, model_id, settings_hash],
        ).fetchone()
        is not None
    )


def put_embedding(
    db: sqlite_utils.Database,
    reference_sha256: str,
    model_id: str,
    settings_hash: str,
    data: bytes,
    meta: dict | None = None,
    *,
    adapter_weights: bytes | None = None,
    now: float | None = None,
) -> Embedding:
    """Insert or replace the embedding for this key (upsert; `created_at` is kept on replace)."""
    at = now if now is not None else _now()
    db.execute(
        "INSERT INTO embeddings (reference_sha256, model_id, settings_hash, data, adapter_weights, meta, "
        "created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (reference_sha256, model_id, settings_hash) DO UPDATE SET data = excluded.data, "
        "adapter_weights = excluded.adapter_weights, meta = excluded.meta, last_used_at = excluded.last_used_at",
        [reference_sha256, model_id, settings_hash, data, adapter_weights, json.dumps(meta or {}), at, at],
    )
    embedding = get_embedding(db, reference_sha256, model_id, settings_hash, touch=False)
    assert embedding is not None
    return embedding


def put_embedding_for_job(
    db: sqlite_utils.Database,
    job_id: str,
    reference_sha256: str,
    model_id: str,
    settings_hash: str,
    data: bytes,
    meta: dict | None = None,
    *,
    adapter_weights: bytes | None = None,
    now: float | None = None,
) -> bool:
    """Store a job's learned embedding only while the job exists, checked and written in one
    transaction: once /forget has deleted the job, nothing of it comes back. False when the
    job was gone (nothing written)."""
    with immediate_transaction(db):
        if db.execute("SELECT 1 FROM jobs WHERE id = ?", [job_id]).fetchone() is None:
            return False
        put_embedding(
            db, reference_sha256, model_id, settings_hash, data, meta, adapter_weights=adapter_weights, now=now
        )
    return True


def delete_embedding(db: sqlite_utils.Database, reference_sha256: str, model_id: str, settings_hash: str) -> bool:
    """Drop one cache entry (one that the runtime could not use). True if there was one."""
    return (
        db.execute(
            "DELETE FROM embeddings WHERE reference_sha256 = ? AND model_id = ? AND settings_hash = ?",
            [reference_sha256, model_id, settings_hash],
        ).rowcount
        == 1
    )


def last_model_id(db: sqlite_utils.Database) -> str | None:
    """The model of the most recently used embedding: a cheap guess of the runtime's model
    for "is this cached?" before asking the runtime."""
    row = db.execute("SELECT model_id FROM embeddings ORDER BY last_used_at DESC LIMIT 1").fetchone()
    return row[0] if row else None


def delete_unused_since(db: sqlite_utils.Database, cutoff: float) -> int:
    """Retention: drop embeddings not used since `cutoff` (Unix seconds). Returns how many."""
    return db.execute("DELETE FROM embeddings WHERE last_used_at < ?", [cutoff]).rowcount


def delete_for_references(db: sqlite_utils.Database, reference_sha256s: list[str]) -> int:
    if not reference_sha256s:
        return 0
    marks = ",".join("?" * len(reference_sha256s))
    return db.execute(f"DELETE FROM embeddings WHERE reference_sha256 IN ({marks})", reference_sha256s).rowcount
