import io

import pytest
from PIL import Image

from storage import embeddings, jobs, pack_orders, packs, references, stickers, users
from storage.database import open_database
from storage.forget import forget_user


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "data.sqlite")


def png(color, size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_users_are_unique_per_platform_and_id(db):
    a = users.get_or_create_user(db, "telegram", "1", "Ann")
    assert users.get_or_create_user(db, "telegram", "1").id == a.id
    assert users.get_or_create_user(db, "discord", "1").id != a.id
    renamed = users.get_or_create_user(db, "telegram", "1", "Annie")
    assert renamed.display_name == "Annie"
    assert not renamed.banned and renamed.daily_quota is None
    assert users.set_banned(db, a.id)
    assert users.set_daily_quota(db, a.id, 5)
    user = users.get_user(db, a.id)
    assert user.banned and user.daily_quota == 5
    assert [u.id for u in users.banned_users(db)] == [a.id]


def test_saving_a_new_reference_deactivates_the_old_one(db):
    uid = users.get_or_create_user(db, "console", "ann").id
    first = references.save_reference(db, uid, png("red"), png("white"), "alpha")
    assert (first.width, first.height, first.active) == (8, 6, True)
    second = references.save_reference(db, uid, png("blue"), None, None)
    assert references.active_reference(db, uid).id == second.id
    assert not references.get_reference(db, uid, first.id).active
    again = references.save_reference(db, uid, png("red"), png("black"), "flood_fill")
    assert again.id == first.id  # same picture: reactivated, not copied
    assert again.mask_source == "flood_fill"
    assert references.active_reference(db, uid).id == first.id
    assert len(references.references_for_user(db, uid)) == 2
    assert references.update_mask(db, uid, first.id, png("gray"), "sam")
    assert references.active_reference(db, uid).mask_source == "sam"
    assert references.delete_unneeded_references(db, uid) == {"references": 1, "embeddings": 0}


def test_references_are_only_reachable_by_their_owner(db):
    ann = users.get_or_create_user(db, "console", "ann").id
    bob = users.get_or_create_user(db, "console", "bob").id
    ref = references.save_reference(db, ann, png("red"), None, None)
    assert references.get_reference(db, bob, ref.id) is None
    assert references.active_reference(db, bob) is None
    assert not references.update_mask(db, bob, ref.id, png("black"), "sam")


def test_embedding_cache_upsert_touch_and_expiry(db):
    key = ("a" * 64, "builtin-v1", "h1")
    assert embeddings.get_embedding(db, *key) is None
    assert not embeddings.exists(db, *key)
    stored = embeddings.put_embedding(db, *key, b"v1", {"steps": 10}, now=100.0)
    assert (stored.data, stored.meta, stored.created_at) == (b"v1", {"steps": 10}, 100.0)
    replaced = embeddings.put_embedding(db, *key, b"v2", adapter_weights=b"lora", now=200.0)
    assert (replaced.id, replaced.data, replaced.adapter_weights, replaced.created_at) == (stored.id, b"v2", b"lora", 100.0)
    assert embeddings.get_embedding(db, *key, now=300.0).last_used_at == 300.0
    embeddings.put_embedding(db, "b" * 64, "builtin-v1", "h1", b"old", now=50.0)
    assert embeddings.last_model_id(db) == "builtin-v1"
    assert embeddings.delete_unused_since(db, 250.0) == 1
    assert embeddings.exists(db, *key)
    assert not embeddings.exists(db, "b" * 64, "builtin-v1", "h1")


def test_embedding_key_includes_model_and_settings(db):
    embeddings.put_embedding(db, "a" * 64, "m1", "h1", b"x")
    assert embeddings.get_embedding(db, "a" * 64, "m2", "h1") is None
    assert embeddings.get_embedding(db, "a" * 64, "m1", "h2") is None


def test_stickers_with_position_are_not_duplicated_by_a_rerun(db):
    uid = users.get_or_create_user(db, "console", "ann").id
    job = jobs.create_job(db, uid, "sticker", {})
    first = stickers.save_sticker(db, uid, job.id, png("red"), "😀", {"emotion": "happy"}, position=0)
    again = stickers.save_sticker(db, uid, job.id, png("blue"), "😀", {"emotion": "happy"}, position=0)
    assert again.id == first.id and again.image == png("blue")
    stickers.save_sticker(db, uid, job.id, png("green"), "😀", position=1)
    assert [s.position for s in stickers.stickers_for_job(db, uid, job.id)] == [0, 1]
    assert stickers.set_platform_file_id(db, uid, first.id, "telegram", "CAAC")
    assert stickers.get_sticker(db, uid, first.id).platform_file_ids == {"telegram": "CAAC"}
    assert stickers.get_sticker(db, uid, first.id).request == {"emotion": "happy"}


def test_sticker_retention_drops_unused_masters(db):
    uid = users.get_or_create_user(db, "console", "ann").id
    old = stickers.save_sticker(db, uid, None, png("red"), None, now=10.0)
    new = stickers.save_sticker(db, uid, None, png("red"), None, now=10.0)
    assert stickers.touch_sticker(db, uid, new.id, now=100.0)
    pack = packs.create_pack(db, uid, "telegram", "p_by_bot", "P")
    packs.add_sticker_to_pack(db, uid, pack.id, old.id, now=10.0)  # in a pack, but not used since
    assert stickers.delete_unused_since(db, 50.0) == 1
    assert [s.id for s in stickers.stickers_for_user(db, uid)] == [new.id]
    assert packs.pack_sticker_ids(db, uid, pack.id) == []


def test_packs_accept_only_the_owners_stickers(db):
    ann = users.get_or_create_user(db, "telegram", "1").id
    bob = users.get_or_create_user(db, "telegram", "2").id
    pack = packs.create_pack(db, ann, "telegram", "ann_by_sealbot", "Ann's stickers")
    mine = stickers.save_sticker(db, ann, None, png("red"), "😀")
    theirs = stickers.save_sticker(db, bob, None, png("blue"), "😀")
    assert packs.add_sticker_to_pack(db, ann, pack.id, mine.id)
    assert not packs.add_sticker_to_pack(db, ann, pack.id, mine.id)  # already in
    assert not packs.add_sticker_to_pack(db, ann, pack.id, theirs.id)
    assert not packs.add_sticker_to_pack(db, bob, pack.id, theirs.id)
    assert packs.get_pack(db, ann, pack.id).sticker_count == 1
    assert packs.get_pack(db, bob, pack.id) is None
    assert packs.find_pack(db, ann, "telegram", "ann_by_sealbot").id == pack.id
    assert packs.name_taken(db, "telegram", "ann_by_sealbot")
    assert [p.id for p in packs.packs_for_user(db, ann, "telegram")] == [pack.id]
    assert packs.pack_sticker_ids(db, bob, pack.id) == []
    assert not packs.delete_pack(db, bob, pack.id)
    assert packs.remove_sticker_from_pack(db, ann, pack.id, mine.id)
    assert packs.get_pack(db, ann, pack.id).sticker_count == 0
    assert packs.set_sticker_count(db, ann, pack.id, 7)
    assert packs.delete_pack(db, ann, pack.id)


def _fill(db, platform_user_id, color, shared_png=None):
    uid = users.get_or_create_user(db, "telegram", platform_user_id).id
    ref = references.save_reference(db, uid, png(color), png("white"), "alpha")
    embeddings.put_embedding(db, ref.sha256, "m", "h", b"emb")
    if shared_png:
        shared = references.save_reference(db, uid, shared_png, None, None)
        embeddings.put_embedding(db, shared.sha256, "m", "h", b"shared")
    job = jobs.create_job(db, uid, "sticker", {"text": "hi"})
    sticker = stickers.save_sticker(db, uid, job.id, png(color), "😀", position=0)
    pack = packs.create_pack(db, uid, "telegram", f"p{platform_user_id}_by_bot", "t")
    packs.add_sticker_to_pack(db, uid, pack.id, sticker.id)
    pack_orders.create_order(db, uid, "cozy", [{"text": "happy cozy"}])
    return uid, ref


def test_forget_deletes_everything_of_one_user_and_nothing_of_another(db):
    shared_picture = png("purple")
    ann, ann_ref = _fill(db, "1", "red", shared_png=shared_picture)
    bob, bob_ref = _fill(db, "2", "blue", shared_png=shared_picture)

    counts = forget_user(db, ann)
    assert counts == {"embeddings": 1, "pack_stickers": 1, "packs": 1, "stickers": 1, "jobs": 2,
                      "pack_orders": 1, "references": 2, "users": 1}
    for table in ("reference_images", "jobs", "stickers", "packs", "pack_orders"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", [ann]).fetchone()[0] == 0
    assert users.get_user(db, ann) is None
    assert not embeddings.exists(db, ann_ref.sha256, "m", "h")
    # Bob keeps everything, including the embedding of the picture both of them saved.
    assert users.get_user(db, bob) is not None
    assert references.active_reference(db, bob).sha256 != ann_ref.sha256
    assert embeddings.exists(db, bob_ref.sha256, "m", "h")
    assert embeddings.exists(db, references.active_reference(db, bob).sha256, "m", "h")
    assert len(stickers.stickers_for_user(db, bob)) == 1
    assert len(packs.packs_for_user(db, bob)) == 1
    assert jobs.count_active(db, bob) == 2  # the sticker job and the pack order's job


def test_forget_keeps_a_ban(db):
    uid, _ = _fill(db, "1", "red")
    users.set_banned(db, uid)
    counts = forget_user(db, uid)
    assert counts["users"] == 0 and counts["references"] == 1
    assert users.find_user(db, "telegram", "1").banned


def test_forget_is_one_transaction_a_failure_midway_deletes_nothing(db):
    """Half a /forget would leave a user with stickers but no character (or the reverse):
    when the last delete fails, the earlier ones are undone too."""
    uid, _ = _fill(db, "1", "red")
    db.execute("CREATE TRIGGER refuse BEFORE DELETE ON reference_images BEGIN SELECT RAISE(ABORT, 'disk'); END")
    with pytest.raises(Exception, match="disk"):
        forget_user(db, uid)
    assert not db.conn.in_transaction
    for table in ("reference_images", "jobs", "stickers", "packs", "pack_stickers", "embeddings"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] > 0, table
    assert users.get_user(db, uid) is not None
    db.execute("DROP TRIGGER refuse")
    assert forget_user(db, uid)["references"] == 1



T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: far from the real clock, so a mix-up shows


def _ann_with_pictures(db, *colors):
    uid = users.get_or_create_user(db, "telegram", "1", "Ann").id
    for color in colors:
        ref = references.save_reference(db, uid, png(color), None, None)
        embeddings.put_embedding(db, ref.sha256, "m", "h", b"e")
    return uid


def test_forget_deletes_the_embeddings_of_every_picture_of_the_user(db):
    uid = _ann_with_pictures(db, "red", "green", "blue")
    counts = forget_user(db, uid, now=T0)
    assert (counts["references"], counts["embeddings"]) == (3, 3)
    assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0


def test_forget_of_a_user_who_never_saved_a_picture(db):
    uid = users.get_or_create_user(db, "telegram", "1", "Ann").id
    assert forget_user(db, uid, now=T0) == {"embeddings": 0, "pack_stickers": 0, "packs": 0, "stickers": 0,
                                            "pack_orders": 0, "jobs": 0, "references": 0, "users": 1}


def test_a_tombstone_is_dated_with_the_given_time_or_else_now(db):
    import time

    first = users.get_or_create_user(db, "telegram", "1", "Ann").id
    users.set_banned(db, first)
    forget_user(db, first, now=T0)
    assert users.get_user(db, first).forgotten_at == T0 and users.get_user(db, first).display_name is None
    second = users.get_or_create_user(db, "telegram", "2", "Bob").id
    users.set_banned(db, second)
    before = time.time()
    forget_user(db, second)
    assert before <= users.get_user(db, second).forgotten_at <= time.time()


def test_todays_count_on_the_given_day_keeps_the_tombstone_and_yesterdays_does_not(db):
    from storage import usage

    uid = users.get_or_create_user(db, "telegram", "1", "Ann").id
    usage.take_quota(db, uid, 5, now=T0)
    db.execute("DELETE FROM usage_events")
    forget_user(db, uid, now=T0 + 60)  # the same UTC day as the count: it still counts
    assert users.get_user(db, uid) is not None
    forget_user(db, uid, now=T0 + 86_400)  # the next day the count is spent
    assert users.get_user(db, uid) is None


def test_any_request_keeps_the_tombstone_unless_it_is_before_counted_since(db):
    from storage import usage

    uid = users.get_or_create_user(db, "telegram", "1", "Ann").id
    usage.record_event(db, uid, usage.STICKER, now=0.0)  # the earliest instant there is
    forget_user(db, uid, now=T0)  # no counted_since: every request still counts
    assert users.get_user(db, uid) is not None
    forget_user(db, uid, now=T0, counted_since=0.5)
    assert users.get_user(db, uid) is None
    assert db.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0] == 0


def test_dropping_one_users_old_pictures_leaves_everyone_elses(db):
    ann = _ann_with_pictures(db, "red", "green")  # red is now inactive
    bob = users.get_or_create_user(db, "telegram", "2", "Bob").id
    references.save_reference(db, bob, png("white"), None, None)
    references.save_reference(db, bob, png("black"), None, None)  # white is now inactive
    assert references.delete_unneeded_references(db, ann) == {"references": 1, "embeddings": 1}
    assert len(references.references_for_user(db, bob)) == 2
    assert references.delete_unneeded_references(db) == {"references": 1, "embeddings": 0}
    assert len(references.references_for_user(db, bob)) == 1
