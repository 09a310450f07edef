"""The job payload is a typed StickerJob, and rows written before it existed still read."""

import sqlite3

import sqlite_utils

from bot.delivery import failure_message
from bot.schema.prompt_parser import parse_prompt
from bot.sticker_job import StickerJob
from storage import jobs, users
from storage.database import open_database
from storage.migrations import migrate
from storage.records import Reference


def _reference():
    return Reference(7, 1, "ab" * 32, b"png", None, None, 64, 64, 1.0, True)


def test_a_sticker_job_survives_its_json_unchanged():
    job = StickerJob.new(parse_prompt("happy waving beach"), "happy waving beach", _reference(), seed=5)
    assert job.tags["emotion"] == "happy" and job.tags["background"] == "beach"
    assert job.reference_id == 7 and job.seed == 5 and job.prompt
    assert StickerJob.from_json(job.to_json()) == job
    # No pack keys on a lone sticker: the stored dict has the keys it always had.
    assert set(job.to_json()) == {"text", "tags", "prompt", "description", "seed", "reference_id", "reference_sha256"}


def test_a_payload_stored_as_an_old_dict_reads_back():
    old = {"text": "sad sitting", "tags": {"emotion": "sad"}, "prompt": "p", "description": "sad, sitting",
           "seed": 3, "reference_id": 2, "reference_sha256": "cd", "pack_order": "o1", "pack_position": 4,
           "pack_size": 12, "from_a_later_version": True}
    job = StickerJob.from_json(old)
    assert (job.text, job.seed, job.reference_id, job.pack_order, job.pack_position) == ("sad sitting", 3, 2, "o1", 4)
    assert job.to_json()["pack_size"] == 12
    sparse = StickerJob.from_json({"text": "hi"})  # an early row: no tags, no description
    assert sparse.tags == {} and sparse.description == "" and sparse.reference_id is None


def _failed_job(db, error, code):
    user = users.get_or_create_user(db, "console", "u")
    job = jobs.create_job(db, user.id, "sticker", {"text": "x", "description": "a cat"}, max_attempts=1)
    jobs.claim_next_job(db, "w", 30)
    assert jobs.fail_job(db, job.id, error, worker_id="w", code=code)
    return jobs.get_job(db, job.id)


def test_the_failure_message_follows_the_attempt_error_code_not_its_text(tmp_path):
    db = open_database(tmp_path / "bot.sqlite")
    timed_out = _failed_job(db, "anything at all", jobs.TIMED_OUT)
    assert timed_out.error_code == "timed_out"
    assert "took too long" in failure_message(timed_out)
    gone = _failed_job(db, "whatever", "reference_deleted")
    assert "your character was deleted" in failure_message(gone)
    # Text that merely mentions a timeout, without the code, is the generic failure.
    other = _failed_job(db, "the GPU timed out once", None)
    assert "after 1 tries" in failure_message(other)


def test_attempts_failed_before_codes_existed_get_the_code_of_their_text(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite_utils.Database(sqlite3.connect(str(path)))
    migrate(old, upto=10)
    old.execute("INSERT INTO users (platform, platform_user_id, display_name, created_at, banned) "
                "VALUES ('console', 'u', 'U', 1.0, 0)")
    for job_id, error in (("a", "timed out after 600 s"), ("b", "the character of this request was deleted"),
                          ("c", "boom")):
        old.execute("INSERT INTO jobs (id, user_id, kind, request, state, attempts, max_attempts, next_attempt_at, "
                    "created_at, updated_at, error) VALUES (?, 1, 'sticker', '{}', 'failed', 3, 3, 1.0, 1.0, 1.0, ?)",
                    [job_id, error])
    old.close()
    db = open_database(path)
    assert [jobs.get_job(db, j).error_code for j in "abc"] == ["timed_out", "reference_deleted", None]
