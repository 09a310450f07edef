import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import UserError
from bot.image_input import NOT_AN_IMAGE, ReferenceImage, load_reference_image


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def raw_png(width: int, height: int, *, bit_depth=8, color_type=2, rows: bytes | None = None) -> bytes:
    """A PNG written by hand: lets a test claim any size without allocating the pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows or b"\0")) + chunk(b"IEND", b"")


def character(size=(200, 160), mode="RGB") -> Image.Image:
    """A red disc on white: a minimal 'character on a plain background'."""
    image = Image.new("RGB", size, "white")
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse([size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4], fill="red")
    return image.convert(mode)


def code_of(data: bytes, **kw) -> str:
    with pytest.raises(UserError) as info:
        load_reference_image(data, **kw)
    message = info.value.user_message
    assert "\n" not in message and len(message) < 200
    return info.value.code


def test_plain_png_becomes_rgba_reference():
    ref = load_reference_image(encode(character(), "PNG"))
    assert isinstance(ref, ReferenceImage)
    assert ref.image.mode == "RGBA" and ref.size == (200, 160)
    assert ref.original_size == (200, 160) and ref.original_format == "PNG"
    assert ref.notes == []
    assert ref.image.getpixel((100, 80)) == (255, 0, 0, 255)


def test_png_bytes_and_sha256_are_stable():
    data = encode(character(), "PNG")
    a, b = load_reference_image(data), load_reference_image(data)
    assert a.png_bytes() == b.png_bytes()
    assert a.sha256() == b.sha256() and len(a.sha256()) == 64
    assert Image.open(io.BytesIO(a.png_bytes())).mode == "RGBA"


def test_large_picture_is_scaled_to_1024_on_the_long_side():
    ref = load_reference_image(encode(character((3000, 2000)), "JPEG", quality=80))
    assert ref.size == (1024, 683)
    assert ref.original_size == (3000, 2000)


@pytest.mark.parametrize("data", [b"hello, this is not a picture", b"%PDF-1.4\n" + b"x" * 100, bytes(range(256)) * 4])
def test_non_images_are_refused(data):
    assert code_of(data) == "not_an_image"


def test_empty_file_is_refused():
    assert code_of(b"") == "empty_image"


def test_uncommon_formats_are_not_decoded():
    assert code_of(encode(character((64, 64)), "ICO")) == "not_an_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    assert code_of(data[: len(data) // 2]) == "damaged_image"


def test_too_many_bytes_is_refused_before_decoding():
    data = encode(character(), "PNG")
    assert code_of(data, max_bytes=len(data) - 1) == "image_too_big"


def test_decompression_bomb_20000_square_is_refused_from_the_header():
    bomb = raw_png(20000, 20000)  # 400 Mpx claimed in a ~60 byte file
    assert len(bomb) < 100
    assert code_of(bomb) == "image_too_large"


def test_pixel_limit_is_checked_before_decoding():
    assert code_of(raw_png(8000, 8000)) == "image_too_large"  # 64 Mpx > 40 Mpx default
    assert code_of(raw_png(300, 300), max_pixels=300 * 300 - 1) == "image_too_large"


def test_pillows_bomb_warning_becomes_a_user_error():
    # Above Pillow's own warning threshold (~89 Mpx), even when our limit is higher.
    assert code_of(raw_png(10000, 10000), max_pixels=10**9) == "image_too_large"


@pytest.mark.parametrize("size", [(1, 1), (31, 200), (200, 10)])
def test_tiny_images_are_refused(size):
    assert code_of(encode(Image.new("RGB", size, "red"), "PNG")) == "image_too_small"


def test_long_thin_images_are_refused():
    assert code_of(encode(Image.new("RGB", (2000, 40), "red"), "PNG")) == "image_aspect"


def test_fully_transparent_image_is_refused():
    assert code_of(encode(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "PNG")) == "image_transparent"


def test_exif_rotation_is_applied():
    image = Image.new("RGB", (120, 60), "white")
    image.paste((255, 0, 0), (0, 0, 60, 60))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    ref = load_reference_image(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert ref.size == (60, 120)
    r, g, b, _ = ref.image.getpixel((30, 20))  # the red half is now on top
    assert r > 200 and g < 60 and b < 60


def test_cmyk_jpeg_is_converted_to_rgb_colours():
    ref = load_reference_image(encode(character().convert("CMYK"), "JPEG", quality=95))
    assert ref.image.mode == "RGBA"
    r, g, b, a = ref.image.getpixel((100, 80))
    assert r > 200 and g < 60 and b < 60 and a == 255


def test_palette_with_transparency_keeps_it_as_alpha():
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (16, 16, 48, 48))
    for fmt in ("PNG", "GIF"):
        ref = load_reference_image(encode(image, fmt, transparency=0))
        assert ref.image.getpixel((0, 0))[3] == 0, fmt
        assert ref.image.getpixel((32, 32)) == (255, 0, 0, 255), fmt


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grey_modes_become_rgba(mode):
    ref = load_reference_image(encode(character(mode=mode), "PNG"))
    assert ref.image.mode == "RGBA"
    assert ref.image.getpixel((0, 0))[:3] == (255, 255, 255)


def test_16_bit_grey_is_scaled_not_clipped():
    array = np.full((64, 64), 40000, dtype=np.uint16)
    array[:, :32] = 1000
    data = encode(Image.fromarray(array), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    ref = load_reference_image(data)
    assert ref.image.getpixel((48, 10))[0] == round(40000 / 257)
    assert ref.image.getpixel((10, 10))[0] == round(1000 / 257)


def test_16_bit_rgb_png_is_read():
    width = height = 40
    row = b"\0" + b"\xff\xff\x00\x00\x00\x00" * width  # filter byte + red in 16-bit RGB
    ref = load_reference_image(raw_png(width, height, bit_depth=16, color_type=2, rows=row * height))
    assert ref.image.getpixel((5, 5)) == (255, 0, 0, 255)


def _frames():
    return [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_use_the_first_frame_and_say_so(fmt):
    first, *rest = _frames()
    data = encode(first, fmt, save_all=True, append_images=rest, duration=100, loop=0)
    ref = load_reference_image(data)
    assert ref.notes == ["Your picture is animated: I used its first frame."]
    r, g, b, a = ref.image.getpixel((32, 32))
    assert r > 200 and g < 40 and b < 40 and a == 255


def test_still_webp_and_bmp_and_tiff_load():
    for fmt in ("WEBP", "BMP", "TIFF"):
        ref = load_reference_image(encode(character(), fmt))
        assert ref.size == (200, 160) and ref.notes == [], fmt


_SEEDS = [encode(character((48, 40)), "PNG"), encode(character((48, 40)), "JPEG"),
          encode(character((48, 40)).convert("P"), "GIF"), encode(character((48, 40)), "WEBP")]


# A damaged upload is refused for what is wrong with it: these are the only answers to bytes
# that no longer make the picture they came from (never, say, "too small" for a 48 x 40 seed).
DAMAGE_CODES = {"not_an_image", "damaged_image", "image_too_large", "image_aspect", "image_too_small",
                "image_transparent"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(_SEEDS), cuts=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
       truncate=st.integers(0, 4000))
def test_fuzzed_uploads_load_or_are_refused_with_a_known_reason(seed, cuts, truncate):
    data = bytearray(seed)
    for position, value in cuts:
        data[position % len(data)] = value
    data = bytes(data[: max(1, len(data) - truncate % len(data))])
    try:
        ref = load_reference_image(data)
    except UserError as exc:
        assert exc.code in DAMAGE_CODES, exc.code
        assert exc.user_message and "\n" not in exc.user_message
        if data == seed:
            raise AssertionError(f"the unchanged seed was refused: {exc.code}") from None
        return
    assert ref.image.mode == "RGBA" and max(ref.size) <= 1024 and min(ref.size) >= 32


def test_the_fuzz_seeds_themselves_load():
    for seed in _SEEDS:
        assert load_reference_image(seed).size == (48, 40)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_as_not_a_picture(data):
    with pytest.raises(UserError) as info:
        load_reference_image(data)
    # Random bytes make no picture header (the odds are nil): refused before any decoding.
    assert info.value.code == ("empty_image" if not data else "not_an_image")
    assert info.value.user_message in (NOT_AN_IMAGE, "That file is empty. Please send a picture of your character.")


# -- refusals word for word, and the high-bit-depth and colour-managed conversions -------------

def test_a_file_too_big_says_its_size_and_the_limit_in_megabytes():
    with pytest.raises(UserError) as info:
        load_reference_image(b"x" * 2_500_000, max_bytes=2_000_000)
    assert info.value.user_message == "That file is too big (2.5 MB). Please send a picture under 2.0 MB."
    assert load_reference_image(encode(character(), "PNG"), max_bytes=len(encode(character(), "PNG"))).size


def test_too_many_pixels_says_the_size_from_the_header_and_the_limit():
    with pytest.raises(UserError) as info:
        load_reference_image(raw_png(9000, 6000))
    assert info.value.user_message == ("That picture is too large (9000×6000 px). Please send one under 40 "
                                       "megapixels (a normal photo is fine).")
    with pytest.raises(UserError) as info:  # Pillow's own bomb check fires first: no size to show
        load_reference_image(raw_png(20000, 20000), max_pixels=10**9)
    assert info.value.user_message == ("That picture is too large. Please send one under 1000 megapixels "
                                       "(a normal photo is fine).")
    assert load_reference_image(encode(character((200, 150)), "PNG"), max_pixels=200 * 150).size == (200, 150)


def grey_of(array, mode: str, fmt: str = "TIFF") -> list[int]:
    """Load a grey picture of `mode` whose rows are `array`, and read back its first pixels' level."""
    image = Image.fromarray(np.tile(np.asarray(array), (32, 1)))
    assert image.mode == mode
    ref = load_reference_image(encode(image, fmt))
    return [ref.image.getpixel((x, 0))[0] for x in range(len(array))]


def test_float_grey_in_zero_to_one_is_scaled_to_eight_bits_and_larger_floats_are_levels():
    unit = np.zeros(32, dtype=np.float32)
    unit[:4] = [0.0, 0.5, 1.0, 0.25]
    assert grey_of(unit, "F")[:4] == [0, 128, 255, 64]  # peak exactly 1.0: a 0..1 picture
    levels = np.zeros(32, dtype=np.float32)
    levels[:4] = [0.0, 1.5, 2.0, 300.0]
    assert grey_of(levels, "F")[:4] == [0, 2, 2, 255]  # peak 300: already levels, clipped at 255
    negative = np.zeros(32, dtype=np.float32)
    negative[:3] = [-5.0, 0.5, 0.75]
    assert grey_of(negative, "F")[:3] == [0, 128, 191]  # below zero is black, not wrapped round


def test_sixteen_bit_grey_is_scaled_by_257_even_when_dark():
    dark = np.zeros(32, dtype=np.uint16)
    dark[:3] = [0, 128, 255]  # a very dark 16-bit picture: still 16-bit levels
    assert grey_of(dark, "I;16", "PNG")[:3] == [0, 0, 1]


def test_32_bit_grey_is_scaled_only_when_its_values_do_not_fit_eight_bits():
    fits = np.zeros(32, dtype=np.int32)
    fits[:2] = [100, 255]
    assert grey_of(fits, "I")[:2] == [100, 255]
    beyond = np.zeros(32, dtype=np.int32)
    beyond[:3] = [100, 256, 65535]
    assert grey_of(beyond, "I")[:3] == [0, 1, 255]  # 100 / 257 rounds to 0


def one_colour_cmyk_profile(lab: tuple[float, float, float]) -> bytes:
    """An ICC v2 printer profile (CMYK -> Lab, one lut8 table) that maps every ink mix to the
    one colour `lab`: a picture converted through it can only come out in that colour."""
    import struct

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    ramp = bytes(range(256))
    colour = bytes([round(lab[0] * 255 / 100), round(lab[1] + 128), round(lab[2] + 128)])
    lut = b"mft1" + bytes(4) + bytes([4, 3, 2, 0]) + b"".join(s15(float(i == j)) for i in range(3) for j in range(3))
    lut += ramp * 4 + colour * 16 + ramp * 3
    desc = b"test CMYK\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(desc)) + desc + bytes(78)),
            (b"wtpt", b"XYZ " + bytes(4) + s15(0.9642) + s15(1.0) + s15(0.8249)),
            (b"cprt", b"text" + bytes(4) + b"none\0"), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        data += bytes(-(offset + len(data)) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def test_a_cmyk_picture_is_converted_through_its_embedded_profile():
    from PIL import ImageCms

    profile = one_colour_cmyk_profile((60, 0, 0))  # every ink mix is a mid grey
    cmyk = character().convert("CMYK")
    expected = ImageCms.profileToProfile(cmyk, ImageCms.ImageCmsProfile(io.BytesIO(profile)),
                                         ImageCms.createProfile("sRGB"), outputMode="RGB").getpixel((100, 80))
    ref = load_reference_image(encode(cmyk, "JPEG", quality=95, icc_profile=profile))
    assert ref.image.getpixel((100, 80)) == (*expected, 255)
    assert expected[0] == expected[1] == expected[2]  # grey, where the naive conversion gives red
    # A broken profile falls back to the plain conversion: the disc is red again.
    broken = load_reference_image(encode(cmyk, "JPEG", quality=95, icc_profile=b"not a profile" * 20))
    r, g, b, _ = broken.image.getpixel((100, 80))
    assert r > 200 and g < 60 and b < 60


def test_a_lab_tiff_becomes_rgba_in_its_colours():
    lab = character().convert("LAB")  # Pillow converts RGB -> LAB, and TIFF stores it
    data = encode(lab, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "LAB"
    ref = load_reference_image(data)
    r, g, b, a = ref.image.getpixel((100, 80))
    assert ref.image.mode == "RGBA" and r > 200 and g < 60 and b < 60 and a == 255
    assert ref.image.getpixel((0, 0))[:3] == Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))


# -- edges of the limits, and the big-picture paths (for the mutants that survived) ------------

def test_a_picture_exactly_ten_times_as_long_as_it_is_wide_loads_and_one_pixel_more_is_refused():
    assert load_reference_image(encode(Image.new("RGB", (320, 32), "red"), "PNG")).size == (320, 32)
    with pytest.raises(UserError) as info:
        load_reference_image(encode(Image.new("RGB", (321, 32), "red"), "PNG"))
    assert info.value.code == "image_aspect"
    assert info.value.user_message == ("That picture is very long and thin (321×32 px). Please send one closer "
                                       "to square, with your character filling most of it.")


def test_sizes_in_messages_are_rounded_megabytes_and_megapixels():
    with pytest.raises(UserError) as info:
        load_reference_image(b"x" * 1_050_000, max_bytes=1_000_000)
    assert info.value.user_message == "That file is too big (1.1 MB). Please send a picture under 1.0 MB."
    with pytest.raises(UserError) as info:
        load_reference_image(raw_png(2000, 2000), max_pixels=3_500_000)
    assert "under 4 megapixels" in info.value.user_message


def test_a_float_picture_peaking_at_two_is_levels_not_a_zero_to_one_picture():
    levels = np.zeros(32, dtype=np.float32)
    levels[:3] = [0.0, 1.5, 2.0]
    assert grey_of(levels, "F")[:3] == [0, 2, 2]


def test_32_bit_grey_peaking_at_256_is_scaled():
    edge = np.zeros(32, dtype=np.int32)
    edge[:2] = [100, 256]
    assert grey_of(edge, "I")[:2] == [0, 1]


@pytest.mark.parametrize("mode, fmt, left, right, level", [
    ("I;16", "PNG", 40000, 1000, lambda v: round(v / 257)),
    ("I", "TIFF", 40000, 1000, lambda v: round(v / 257)),
    ("F", "TIFF", 0.8, 0.2, lambda v: round(v * 255)),
])
def test_a_high_bit_depth_picture_over_1024_px_is_scaled_down_in_its_own_mode(mode, fmt, left, right, level):
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    array = np.full((1400, 2100), right, dtype=dtype)
    array[:, :1000] = left
    image = Image.fromarray(array)
    assert image.mode == mode
    ref = load_reference_image(encode(image, fmt, **({"compression": "tiff_deflate"} if fmt == "TIFF" else {})))
    assert ref.size == (1024, 683) and ref.original_size == (2100, 1400)
    assert ref.image.getpixel((100, 300))[0] == level(left) and ref.image.getpixel((900, 300))[0] == level(right)


@pytest.fixture
def drafts(monkeypatch):
    """What JPEG decoding was asked to reduce to: (format, mode, size) per draft call."""
    from PIL import JpegImagePlugin

    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        calls.append((self.format, mode, size))
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return calls


def test_a_jpeg_over_twice_the_stored_size_is_decoded_at_a_reduced_scale(drafts):
    assert load_reference_image(encode(character((2048, 1500)), "JPEG")).size == (1024, 750)
    assert drafts == []  # at twice 1024 px: decoded in full
    assert load_reference_image(encode(character((2049, 1500)), "JPEG")).size == (1024, 750)
    assert drafts == [("JPEG", "RGB", (1024, 1024))]


def test_a_multi_picture_jpeg_is_decoded_at_a_reduced_scale_too(drafts):
    frames = [character((2100, 1400)), character((2100, 1400), mode="L").convert("RGB")]
    data = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    ref = load_reference_image(data)
    assert ref.original_format == "MPO" and ref.size == (1024, 683)
    assert drafts == [("MPO", "RGB", (1024, 1024))]


def test_big_pictures_of_other_formats_are_not_drafted(drafts):
    assert load_reference_image(encode(character((2100, 1400)), "PNG")).size == (1024, 683)
    assert drafts == []


def message_of(data: bytes, **kw) -> str:
    with pytest.raises(UserError) as info:
        load_reference_image(data, **kw)
    return info.value.user_message


def test_the_default_limits_are_ten_megabytes_and_forty_megapixels():
    assert code_of(b"x" * 10_000_001) == "image_too_big"
    assert code_of(b"x" * 10_000_000) == "not_an_image"  # inside the limit: decoded, and not a picture
    assert code_of(raw_png(40_000_001, 1)) == "image_too_large"
    assert code_of(raw_png(40_000_000, 1)) == "image_too_small"  # inside the limit: the next check


def test_a_too_small_or_transparent_picture_is_told_word_for_word():
    assert message_of(encode(character((31, 40)), "PNG")) == (
        "That picture is too small (31×40 px). Please send one at least 32 px on each side.")
    assert message_of(encode(character((40, 40)), "PNG"), min_side=48) == (
        "That picture is too small (40×40 px). Please send one at least 48 px on each side.")
    assert message_of(encode(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "PNG")) == (
        "That picture is completely transparent. Please send one where your character is visible.")


def test_a_picture_the_decoder_fails_on_is_logged_for_the_operator_with_the_error(caplog, monkeypatch):
    import logging

    from bot import image_input

    def broken(image):
        raise TypeError("x" * 300)

    monkeypatch.setattr(image_input, "_to_rgba", broken)
    with caplog.at_level(logging.INFO, logger="bot.image_input"):
        assert code_of(encode(character(), "PNG")) == "damaged_image"
    (record,) = caplog.records
    assert record.getMessage() == "reference image rejected"
    assert record.error == ("TypeError: " + "x" * 300)[:200]
