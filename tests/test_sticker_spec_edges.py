"""bot/sticker_spec.py at its edges: each byte cap met exactly, each step of the encoder's ladder
reached on its own, each size rule at its smallest case, and the names and messages word for word.

The ladder is the module's documented strategy: lossless WebP first, then lossy at qualities
90, 80, 70, 55, 40, 25, 10 (the alpha plane lossless down to 70, then at the same quality), then
the lowest quality on a picture smoothed by a blur of 1, 2, then 4 px with a lossy alpha; PNG
optimised, then quantized to 256 colours. A cap set to exactly the size one step gives must
return that step's very bytes: every earlier step is bigger, and "fits" includes the cap itself.
"""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from bot import sticker_spec as spec
from bot.sticker_spec import (
    InvalidStickerError,
    StickerSpec,
    StickerTooLargeError,
    format_sticker,
)

LADDER = [(90, 100), (80, 100), (70, 100), (55, 55), (40, 40), (25, 25), (10, 10)]  # (quality, alpha quality)
BLURS = (1.0, 2.0, 4.0)


def webp(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", method=4, **options)
    return buffer.getvalue()


def png(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def grainy(side: int = 128, seed: int = 0) -> Image.Image:
    """Colour and alpha noise over gradients: each step of the ladder comes out smaller."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([200 * x + 30, 150 * y + 50, 100 * (x + y) + 20], axis=2) + rng.normal(0, 40, (side, side, 3))
    alpha = rng.integers(0, 256, (side, side))
    return Image.fromarray(np.clip(np.dstack([rgb, alpha]), 0, 255).astype(np.uint8), "RGBA")


def capped(fmt: str, side: int, max_bytes: int) -> StickerSpec:
    return StickerSpec("capped", fmt, side, True, max_bytes, fmt.lower(), f"image/{fmt.lower()}")


def test_each_lossy_step_of_the_ladder_is_taken_at_exactly_its_size():
    image = grainy()
    lossless = webp(image, lossless=True, quality=80)
    steps = [webp(image, quality=q, alpha_quality=a) for q, a in LADDER]
    sizes = [len(lossless)] + [len(s) for s in steps]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes  # the test's premise
    assert format_sticker(image, capped("WEBP", 128, len(lossless))) == lossless
    for (quality, _), data in zip(LADDER, steps):
        assert format_sticker(image, capped("WEBP", 128, len(data))) == data, quality


def test_each_smoothing_step_is_taken_at_exactly_its_size_and_past_the_last_the_error_says_so():
    image = grainy(seed=1)
    lowest = len(webp(image, quality=10, alpha_quality=10))
    smoothed = [webp(image.filter(ImageFilter.GaussianBlur(r)), quality=10, alpha_quality=0) for r in BLURS]
    sizes = [lowest] + [len(s) for s in smoothed]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes
    for radius, data in zip(BLURS, smoothed):
        assert format_sticker(image, capped("WEBP", 128, len(data))) == data, radius
    with pytest.raises(StickerTooLargeError) as refused:
        format_sticker(image, capped("WEBP", 128, len(smoothed[-1]) - 1))
    assert str(refused.value) == f"{len(smoothed[-1])} bytes at the lowest quality, limit {len(smoothed[-1]) - 1}"


def test_png_is_optimised_at_exactly_its_size_then_quantized_at_exactly_its_size():
    image = grainy(96, seed=2)
    optimised = png(image, optimize=True)
    quantized = png(image.quantize(colors=256, method=Image.Quantize.FASTOCTREE), optimize=True)
    assert len(quantized) < len(optimised) < len(png(image))
    assert format_sticker(image, capped("PNG", 96, len(optimised))) == optimised
    assert format_sticker(image, capped("PNG", 96, len(quantized))) == quantized
    with pytest.raises(StickerTooLargeError) as refused:
        format_sticker(image, capped("PNG", 96, len(quantized) - 1))
    assert str(refused.value) == f"{len(quantized)} bytes after quantizing, limit {len(quantized) - 1}"


def test_an_unknown_format_is_named():
    with pytest.raises(ValueError, match="^unknown format GIF$"):
        format_sticker(grainy(32), capped("GIF", 32, 10_000))


@pytest.mark.parametrize("mode", ["RGB", "LA", "P"])
def test_masters_in_other_modes_become_rgba_stickers(mode):
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([8, 8, 56, 56], fill=(200, 40, 40, 255))
    master = image.convert(mode)
    sticker = Image.open(io.BytesIO(spec.to_discord_server_sticker(master)))
    assert sticker.mode == "RGBA" and sticker.size == (320, 320)


def test_a_square_target_pads_a_wide_picture_with_clear_pixels_centred_and_does_not_stretch_it():
    wide = Image.new("RGBA", (320, 160), (250, 200, 40, 255))  # already at the target's width: no resize
    sticker = Image.open(io.BytesIO(spec.to_discord_server_sticker(wide))).convert("RGBA")
    pixels = np.asarray(sticker)
    assert (pixels[:80] == 0).all() and (pixels[240:] == 0).all()  # clear bands, colour zero too
    assert (pixels[80:240, :, 3] == 255).all()  # the picture itself, centred, unstretched
    tall = Image.new("RGBA", (100, 201), (250, 200, 40, 255))
    alpha = np.asarray(Image.open(io.BytesIO(spec.to_discord_server_sticker(tall))).convert("RGBA"))[..., 3]
    columns = np.flatnonzero(alpha[160] > 128)
    assert abs(columns[0] - (319 - columns[-1])) <= 1  # as much margin left as right


def test_long_side_targets_keep_a_one_pixel_side():
    assert spec.TELEGRAM_STATIC.target_size((1024, 1)) == (512, 1)
    assert spec.TELEGRAM_STATIC.target_size((1, 1024)) == (1, 512)
    assert spec.TELEGRAM_STATIC.target_size((700, 700)) == (512, 512)


def test_one_side_of_exactly_512_and_the_other_of_one_pixel_is_a_valid_telegram_sticker():
    assert spec.validate_telegram_sticker(webp(Image.new("RGBA", (512, 1), (1, 2, 3, 255)))) == []
    assert spec.validate_telegram_sticker(webp(Image.new("RGBA", (1, 512), (1, 2, 3, 255)))) == []


def test_problems_are_worded_for_the_operator():
    frames = [Image.new("RGBA", (512, 512), c) for c in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    assert spec.validate_telegram_sticker(buffer.getvalue()) == ["animated, expected a static sticker"]
    assert spec.validate_telegram_sticker(b"junk") == ["not a readable image (UnidentifiedImageError)"]
    jpeg = io.BytesIO()
    Image.new("RGB", (512, 512), "red").save(jpeg, format="JPEG")  # a format with no frames at all
    assert spec.validate_telegram_sticker(jpeg.getvalue()) == ["format JPEG, expected WEBP"]
    with pytest.raises(InvalidStickerError) as invalid:
        spec.validate_sticker(b"junk", spec.WHATSAPP_STATIC)
    assert invalid.value.problems == ["not a readable image (UnidentifiedImageError)"]
    assert str(invalid.value) == "not a valid whatsapp_static sticker: not a readable image (UnidentifiedImageError)"
    small = webp(Image.new("RGBA", (500, 400), "red"))
    with pytest.raises(InvalidStickerError) as invalid:
        spec.validate_sticker(small, spec.WHATSAPP_STATIC)
    assert str(invalid.value) == "not a valid whatsapp_static sticker: size 500×400, expected 512×512"
    assert str(InvalidStickerError(spec.WHATSAPP_STATIC, ["one", "two"])) == (
        "not a valid whatsapp_static sticker: one; two")


@pytest.mark.parametrize("base, bot, expected", [
    ("Ann's Stickers!", "@seal_bot", "Ann_s_Stickers_by_seal_bot"),
    ("MAX", "bot", "MAX_by_bot"),
    ("123 go", "bot", "go_by_bot"),
    ("____", "bot", "stickers_by_bot"),
    ("Cats", "b" * 60, "s_by_" + "b" * 60),  # no room left for any of the stem
    ("word_" * 20, "seal_bot12", "word_" * 9 + "word_by_seal_bot12"),  # cut at 50, just after an underscore
    ("Cats", "@XmasBot", "Cats_by_XmasBot"),  # only the @ goes, not an X after it
])
def test_telegram_set_names_word_for_word(base, bot, expected):
    assert spec.telegram_set_name(base, bot) == expected


def test_telegram_set_name_problems_word_for_word():
    assert spec.telegram_set_name_problems("a", "b") == ["must end in _by_b"]  # one character is long enough
    assert spec.telegram_set_name_problems("x_by_seal_bot", "@seal_bot") == []
    assert spec.telegram_set_name_problems("x_by_other", "@seal_bot") == ["must end in _by_seal_bot"]
    assert spec.telegram_set_name_problems("", "b") == [
        "length 0, expected 1–64", "must start with a letter and use only English letters, digits and underscores",
        "must end in _by_b"]
    assert spec.telegram_set_name_problems("a__b_by_b", "b") == ["must not contain consecutive underscores"]
    assert spec.telegram_set_name_problems("Cats_by_XmasBot", "@XmasBot") == []
    assert spec.telegram_set_name_problems("Cats_by_mas", "@XmasBot") == ["must end in _by_XmasBot"]


def test_telegram_titles_are_stripped_cut_at_64_and_never_empty():
    assert spec.telegram_title("  Ann's pack  ") == "Ann's pack"
    assert spec.telegram_title("   ") == "Stickers"
    assert spec.telegram_title("x" * 70) == "x" * 64


def test_a_discord_sticker_name_of_exactly_two_characters_is_kept():
    assert spec.discord_sticker_name("ab") == "ab"
    assert spec.discord_sticker_name("a") == "a sticker"


def test_pack_keywords_at_their_limits():
    rules = spec.TELEGRAM_SET
    assert spec.pack_keywords([f"k{i}" for i in range(25)]) == [f"k{i}" for i in range(20)]  # 20, not 21
    exact = ["a" * 30, "b" * 30, "cccc"]  # 64 characters together: all fit
    assert spec.pack_keywords(exact) == exact
    assert spec.pack_keywords(["a" * 30, "b" * 30, "c" * 10, "dd"]) == ["a" * 30, "b" * 30, "dd"]  # c too long, dd fits
    assert spec.pack_keywords(["Blue   Sky", "  blue sky "]) == ["blue sky"]
    assert rules.keyword_problems([f"k{i}" for i in range(20)]) == []
    assert rules.keyword_problems([f"k{i:02}" for i in range(21)]) == ["21 keywords, at most 20"]  # 63 characters
    assert rules.keyword_problems(["x" * 65]) == ["keywords of 65 characters, at most 64 together"]


def test_twenty_emoji_are_allowed_on_telegram():
    assert spec.TELEGRAM_SET.emoji_problems(["😊"] * 20) == []
    assert spec.TELEGRAM_SET.emoji_problems(["😊"] * 21) == ["21 emoji, expected 1–20"]
