"""/export: each file opened and checked file by file against the platforms' published rules.

The numbers are written here as literals from the rules (WhatsApp's stickers README and
Limits.swift, Signal's Signal-Art-Creator constants), not read from bot.sticker_spec.
"""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bot.errors import UserError
from bot.exports.builder import build_export
from bot.settings import Settings
from seal_runtime.imaging.cutout import prepare_sticker
from seal_runtime.imaging.sticker_look import StickerLook
from storage import jobs, pack_orders, stickers, users
from storage.database import open_database

EMOJI = ("😊", "😢", "😠", "😮", "😴", "😍")


def master(seed: int, busy: bool = False) -> bytes:
    """A finished sticker master as the runtime makes it (512 px, cut out, outlined); `busy`
    gives it photo-like grain all over the character, the hardest case for the byte limits."""
    rng = np.random.default_rng(seed)
    array = np.clip(250 + rng.normal(0, 6, (64, 64, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(array)
    colour = tuple(int(c) for c in rng.integers(30, 220, 3))
    ImageDraw.Draw(image).ellipse([12, 8, 52, 60], fill=colour, outline=(0, 0, 0), width=2)
    if busy:
        pixels = np.asarray(image).astype(np.float64)
        inside = np.zeros((64, 64), bool)
        inside[14:56, 16:48] = True
        pixels[inside] += rng.normal(0, 60, (int(inside.sum()), 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    prepare_sticker(image, background="plain", look=StickerLook()).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "bot.sqlite")
    yield database
    database.close()


def make_stickers(db, user_id, count, busy=False):
    for i in range(count):
        job = jobs.create_job(db, user_id, "sticker", {"text": "x"})
        stickers.save_sticker(
            db,
            user_id,
            job.id,
            master(i, busy),
            EMOJI[i % 6],
            {"emotion": "happy", "action": "waving", "background": "plain"},
            position=0,
            now=1000 + i,
        )


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def export(db, user_id, fmt):
    return build_export(db, Settings(), user_id, "Ann", fmt)


# -- WhatsApp ------------------------------------------------------------------------------------
@pytest.mark.parametrize("busy", [False, True], ids=["cartoon", "grainy"])
def test_wastickers_file_by_file(db, busy):
    ann = users.get_or_create_user(db, "telegram", "1", "Ann").id
    make_stickers(db, ann, 12, busy=busy)
    exported = export(db, ann, "whatsapp")
    assert exported.name.endswith(".wastickers") and exported.count == 12
    archive = zipfile.ZipFile(io.BytesIO(exported.data))
    names = archive.namelist()
    assert archive.read("title.txt").decode() == "Ann's stickers"
    assert archive.read("author.txt").decode() == "SEAL Sticker Bot"
    tray = archive.read("tray.png")
    assert opened(tray).format == "PNG" and opened(tray).size == (96, 96)  # "96 x 96 pixels"
    assert len(tray) <= 50_000  # "Max file size of 50KB"
    webps = sorted(n for n in names if n.endswith(".webp"))
    assert 3 <= len(webps) <= 30  # "a minimum of 3 stickers and a maximum of 30"
    for name in webps:
        data = archive.read(name)
        image = opened(data)
        assert image.format == "WEBP" and image.size == (512, 512)  # "exactly 512 x 512", WebP
        assert len(data) < 100_000  # "less than 100KB"
        assert not getattr(image, "is_animated", False)
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0  # "a transparent background"
    contents = json.loads(archive.read("contents.json"))
    pack = contents["sticker_packs"][0]
    assert pack["tray_image_file"] == "tray.png" and len(pack["name"]) <= 128 and len(pack["publisher"]) <= 128
    assert [s["image_file"] for s in pack["stickers"]] == webps
    assert all(1 <= len(s["emojis"]) <= 3 for s in pack["stickers"])  # "up to a maximum of three emoji"
    assert [s["emojis"][0] for s in pack["stickers"]] == [EMOJI[i % 6] for i in range(12)]


def test_whatsapp_takes_at_most_30_and_needs_3(db):
    ann = users.get_or_create_user(db, "telegram", "1", "Ann").id
    make_stickers(db, ann, 2)
    with pytest.raises(UserError, match="at least 3"):
        export(db, ann, "whatsapp")
    make_stickers(db, ann, 30)
    exported = export(db, ann, "whatsapp")
    assert exported.count == 30 and exported.left_out == 2
    assert len([n for n in zipfile.ZipFile(io.BytesIO(exported.data)).namelist() if n.endswith(".webp")]) == 30
    assert "2 more did not fit" in exported.user_message()


# -- Signal --------------------------------------------------------------------------------------
@pytest.mark.parametrize("busy", [False, True], ids=["cartoon", "grainy"])
def test_signal_zip_file_by_file(db, busy):
    ann = users.get_or_create_user(db, "discord", "7", "Ann").id
    make_stickers(db, ann, 8, busy=busy)
    exported = export(db, ann, "signal")
    archive = zipfile.ZipFile(io.BytesIO(exported.data))
    pictures = sorted(n for n in archive.namelist() if n[0].isdigit())
    assert 1 <= len(pictures) <= 200  # MIN_STICKERS = 1, MAX_STICKERS = 200
    for name in [*pictures, "cover.png"]:
        data = archive.read(name)
        image = opened(data)
        assert image.format in ("PNG", "WEBP") and image.size == (512, 512)  # STICKER_SIZE = 512
        assert len(data) <= 300 * 1024  # MAX_STICKER_BYTE_SIZE = 300 * 1024
    manifest = json.loads(archive.read("stickers.json"))
    assert [s["file"] for s in manifest["stickers"]] == pictures
    assert all(len(s["emoji"]) == 1 for s in manifest["stickers"])  # one emoji each
    assert manifest["cover"] == "cover.png"
    readme = archive.read("README.txt").decode()
    assert "Create/upload sticker pack" in readme and f"{pictures[0]}  {EMOJI[0]}" in readme


def test_png_zip_holds_the_masters(db):
    ann = users.get_or_create_user(db, "console", "me", "Ann").id
    make_stickers(db, ann, 4)
    archive = zipfile.ZipFile(io.BytesIO(export(db, ann, "png").data))
    pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
    assert len(pngs) == 4 and all(opened(archive.read(n)).size == (512, 512) for n in pngs)
    assert len(json.loads(archive.read("manifest.json"))["stickers"]) == 4


# -- which stickers ----------------------------------------------------------------------------
def test_the_latest_pack_is_exported_in_pack_order(db):
    ann = users.get_or_create_user(db, "telegram", "1", "Ann").id
    make_stickers(db, ann, 5)  # older single stickers
    order = pack_orders.create_order(db, ann, "", [{"text": f"s{i}"} for i in range(4)])
    for position, job_id in enumerate(order.job_ids):
        stickers.save_sticker(db, ann, job_id, master(100 + position), EMOJI[position], {}, position=0)
    exported = export(db, ann, "png-zip")
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(exported.data)).read("manifest.json"))
    assert [s["emoji"] for s in manifest["stickers"]] == list(EMOJI[:4])
    assert exported.source == "your latest /makepack"


def test_exports_are_per_user_and_unknown_formats_are_refused(db):
    ann = users.get_or_create_user(db, "telegram", "1", "Ann").id
    bob = users.get_or_create_user(db, "telegram", "2", "Bob").id
    make_stickers(db, ann, 3)
    with pytest.raises(UserError):
        export(db, bob, "whatsapp")
    with pytest.raises(UserError, match="whatsapp, signal, png-zip"):
        export(db, ann, "line")
