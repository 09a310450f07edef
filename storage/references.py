"""reference_images: the picture of a user's character and its subject mask.

A user has at most one active reference; saving a new one deactivates the old. Old rows
stay only while a queued or running job points at them (`delete_unneeded_references`,
called by /setref and by housekeeping), or until /forget.
"""

from __future__ import annotations

import hashlib
import io

import sqlite_utils

from storage.records import Reference
from storage.transactions import immediate_transaction, now


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.size


def save_reference(
    db: sqlite_utils.Database,
    user_id: int,
    image_png: bytes,
    mask_png: bytes | None,
    mask_source: str | None,
    *,
    width: int | None = None,
    height: int | None = None,
) -> Reference:
    """Store `image_png` (already validated and normalised) as the user's active reference.

    The same picture again reactivates the existing row instead of adding a copy (keeping
    the mask the runtime made for it unless a new one is given); the embedding cache is
    keyed by its sha256. The mask is usually None here: the runtime makes it with the first
    job and the worker stores it with `update_mask`.
    """
    sha256 = hashlib.sha256(image_png).hexdigest()
    if width is None or height is None:
        width, height = _png_size(image_png)
    with immediate_transaction(db):
        db.execute("UPDATE reference_images SET active = 0 WHERE user_id = ? AND active = 1", [user_id])
        existing = db.execute(
            "SELECT id FROM reference_images WHERE user_id = ? AND sha256 = ? ORDER BY id DESC LIMIT 1",
            [user_id, sha256],
        ).fetchone()
        if existing:
            reference_id = existing[0]
            db.execute(
                "UPDATE reference_images SET active = 1, mask = COALESCE(?, mask), "
                "mask_source = COALESCE(?, mask_source) WHERE id = ?",
                [mask_png, mask_source, reference_id],
            )
        else:
            reference_id = db.execute(
                "INSERT INTO reference_images (user_id, sha256, image, mask, mask_source, width, height, "
                "created_at, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                [user_id, sha256, image_png, mask_png, mask_source, width, height, now()],
            ).lastrowid
    reference = get_reference(db, user_id, reference_id)
    assert reference is not None
    return reference


def active_reference(db: sqlite_utils.Database, user_id: int) -> Reference | None:
    rows = list(
        db.query("SELECT * FROM reference_images WHERE user_id = ? AND active = 1 ORDER BY id DESC LIMIT 1", [user_id])
    )
    return Reference.from_row(rows[0]) if rows else None


def get_reference(db: sqlite_utils.Database, user_id: int, reference_id: int) -> Reference | None:
    """The reference, only when it belongs to `user_id`."""
    rows = list(db.query("SELECT * FROM reference_images WHERE id = ? AND user_id = ?", [reference_id, user_id]))
    return Reference.from_row(rows[0]) if rows else None


def references_for_user(db: sqlite_utils.Database, user_id: int) -> list[Reference]:
    return [
        Reference.from_row(r)
        for r in db.query("SELECT * FROM reference_images WHERE user_id = ? ORDER BY id", [user_id])
    ]


def update_mask(db: sqlite_utils.Database, user_id: int, reference_id: int, mask_png: bytes, mask_source: str) -> bool:
    """Replace the subject mask (e.g. a better SAM mask from the runtime). True when updated."""
    cursor = db.execute(
        "UPDATE reference_images SET mask = ?, mask_source = ? WHERE id = ? AND user_id = ?",
        [mask_png, mask_source, reference_id, user_id],
    )
    return cursor.rowcount == 1


def delete_unneeded_references(db: sqlite_utils.Database, user_id: int | None = None) -> dict[str, int]:
    """Drop old (inactive) pictures that no queued or running job points at — of `user_id`,
    or of everyone — together with the learned embeddings of those pictures, unless another
    reference row (another user's, or the same picture saved again) still has that picture.
    Returns how many of each went."""
    user_filter = "" if user_id is None else "AND user_id = :user"
    with immediate_transaction(db):
        shas = [
            row[0]
            for row in db.execute(
                f"DELETE FROM reference_images WHERE active = 0 {user_filter} AND id NOT IN ("
                "SELECT json_extract(request, '$.reference_id') FROM jobs "
                "WHERE state IN ('queued', 'adapting', 'generating') "
                "AND json_extract(request, '$.reference_id') IS NOT NULL) RETURNING sha256",
                {"user": user_id},
            ).fetchall()
        ]
        orphans = sorted(set(shas))
        marks = ",".join("?" * len(orphans)) or "NULL"
        gone = db.execute(
            f"DELETE FROM embeddings WHERE reference_sha256 IN ({marks}) AND reference_sha256 NOT IN "
            "(SELECT sha256 FROM reference_images)",
            orphans,
        ).rowcount
    return {"references": len(shas), "embeddings": gone}
