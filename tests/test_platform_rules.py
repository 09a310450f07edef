"""The platform rules in bot/sticker_spec.py, checked against the numbers the platforms publish.

Every number below is written as a literal copied from the platform's own text (cited), not
read from the constants the code uses: a wrong constant fails here.
"""

import io

import pytest
from PIL import Image, ImageDraw

from bot import sticker_spec as spec


def cartoon(size=64) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse(
        [size * 0.1, size * 0.1, size * 0.9, size * 0.9], fill=(40, 160, 90, 255), outline=(0, 0, 0, 255), width=2
    )
    return image


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- Telegram: https://core.telegram.org/bots/api ------------------------------------------------
def test_telegram_static_sticker_numbers():
    # InputSticker / uploadStickerFile: "must be up to 512 kilobytes in size, dimensions must not
    # exceed 512px, and either width or height must be exactly 512px"
    assert spec.TELEGRAM_STATIC.side == 512 and not spec.TELEGRAM_STATIC.square
    assert spec.TELEGRAM_STATIC.max_bytes <= 512 * 1024 and spec.TELEGRAM_STATIC.max_bytes >= 512 * 1000
    assert spec.TELEGRAM_STATIC.format in ("WEBP", "PNG")


def test_telegram_thumbnail_numbers():
    # setStickerSetThumbnail: "A .WEBP or .PNG image with the thumbnail, must be up to 128 kilobytes in
    # size and have a width and height of exactly 100px"
    thumb = spec.TELEGRAM_THUMBNAIL
    assert (thumb.side, thumb.square) == (100, True)
    assert 128 * 1000 <= thumb.max_bytes <= 128 * 1024
    assert thumb.format in ("WEBP", "PNG")
    data = spec.to_telegram_thumbnail(cartoon())
    assert opened(data).size == (100, 100) and len(data) <= 128_000
    assert spec.validate_telegram_thumbnail(data) == []


def test_telegram_set_numbers():
    rules = spec.TELEGRAM_SET
    # createNewStickerSet "stickers: A JSON-serialized list of 1-50 initial stickers"; title "1-64 characters"
    assert rules.max_per_call == 50
    assert rules.max_title_chars == 64
    # a static ("regular") set holds up to 120 stickers
    assert (rules.min_stickers, rules.max_stickers) == (1, 120)
    # InputSticker "emoji_list: List of 1-20 emoji", "keywords: List of 0-20 search keywords ... with
    # total length of up to 64 characters"
    assert (rules.min_emoji, rules.max_emoji) == (1, 20)
    assert (rules.max_keywords, rules.max_keyword_chars) == (20, 64)
    assert rules.emoji_problems([]) and not rules.emoji_problems(["😊"]) and rules.emoji_problems(["😊"] * 21)


def test_pack_keywords_keep_telegrams_limits():
    words = ["Happy", "waving", "happy", "beach", "a" * 30, "b" * 30, "cozy", "winter"] + [f"w{i}" for i in range(30)]
    keywords = spec.pack_keywords(words)
    assert keywords[:3] == ["happy", "waving", "beach"]  # distinct, lower case, in order
    assert len(keywords) <= 20 and sum(len(k) for k in keywords) <= 64
    assert spec.TELEGRAM_SET.keyword_problems(keywords) == []
    assert spec.TELEGRAM_SET.keyword_problems(["x" * 65]) != []


# -- WhatsApp: github.com/WhatsApp/stickers Android/README.md, iOS Limits.swift ---------------------
def test_whatsapp_numbers():
    # "Stickers must be exactly 512 x 512 pixels", "must be in the WebP format", "Each sticker must be
    # less than 100KB"
    assert (spec.WHATSAPP_STATIC.side, spec.WHATSAPP_STATIC.square, spec.WHATSAPP_STATIC.format) == (512, True, "WEBP")
    assert spec.WHATSAPP_STATIC.max_bytes <= 100 * 1024
    # tray icon: "This image should be 96 x 96 pixels", "Max file size of 50KB"
    assert (spec.WHATSAPP_TRAY.side, spec.WHATSAPP_TRAY.square, spec.WHATSAPP_TRAY.format) == (96, True, "PNG")
    assert spec.WHATSAPP_TRAY.max_bytes <= 50 * 1024
    rules = spec.WHATSAPP_PACK
    # "Each sticker pack must have a minimum of 3 stickers and a maximum of 30 stickers"
    assert (rules.min_stickers, rules.max_stickers) == (3, 30)
    # "add up to a maximum of three emoji for each sticker file" (optional)
    assert (rules.min_emoji, rules.max_emoji) == (0, 3)
    # `name` and `publisher`: "128 characters max"
    assert (rules.max_title_chars, rules.max_author_chars) == (128, 128)
    assert rules.count_problems(2) and not rules.count_problems(3) and not rules.count_problems(30)
    assert rules.count_problems(31)


# -- Signal: github.com/signalapp/Signal-Art-Creator web/src/constants.ts ---------------------------
def test_signal_numbers():
    # STICKER_SIZE = 512; MAX_STICKER_BYTE_SIZE = 300 * 1024; MIN_STICKERS = 1; MAX_STICKERS = 200
    assert (spec.SIGNAL_STICKER.side, spec.SIGNAL_STICKER.square) == (512, True)
    assert spec.SIGNAL_STICKER.max_bytes == 300 * 1024
    assert spec.SIGNAL_STICKER.format in ("PNG", "WEBP")
    rules = spec.SIGNAL_PACK
    assert (rules.min_stickers, rules.max_stickers) == (1, 200)
    assert (rules.min_emoji, rules.max_emoji) == (1, 1)
    data = spec.to_signal(cartoon())
    assert opened(data).size == (512, 512) and spec.validate_signal(data) == []


# -- Discord: https://discord.com/developers/docs -----------------------------------------------------
def test_discord_numbers():
    # Create Guild Sticker: "PNG, APNG, GIF, or Lottie JSON file, max 512 KiB"; name 2-30, description
    # empty or 2-100; slots 5/15/30/60 by boost tier. Create Message: up to 10 files.
    assert spec.DISCORD_SERVER_STICKER.max_bytes == 512 * 1024
    assert spec.DISCORD_SERVER_STICKER.format == "PNG"
    assert (spec.DISCORD_NAME_MIN, spec.DISCORD_NAME_MAX) == (2, 30)
    assert spec.DISCORD_STICKER_DESCRIPTION_MAX == 100
    assert spec.DISCORD_STICKER_SLOTS == (5, 15, 30, 60)
    assert spec.DISCORD_FILES_PER_MESSAGE == 10


@pytest.mark.parametrize("name", sorted(spec.SPECS))
def test_every_spec_formats_a_cartoon_within_its_rules(name):
    file_spec = spec.SPECS[name]
    data = spec.format_sticker(cartoon(), file_spec)
    assert spec.sticker_problems(data, file_spec) == []
