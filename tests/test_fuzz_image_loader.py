"""Fuzzing the /setref image loader beyond tests/test_image_input.py's byte mutations:
well-formed pictures in every mode and format, forged headers claiming huge sizes with
valid checksums, animations, junk EXIF orientations, and mutations of all of those.
Whatever arrives, the answer is a normalised RGBA picture or a friendly UserError, and
each test knows which: a well-formed picture loads unless it is too small or too thin, a
header claiming too many pixels is refused for that, from the header, and fast. (A loader
that refused everything as "damaged", or hid a bug of its own behind that message, would
pass a test that accepted any UserError.)"""

import io
import struct
import time

from hypothesis import HealthCheck, given, settings
from PIL import Image

from benchmarks.fakes.fuzz_inputs import (
    animated,
    forged_headers,
    image_uploads,
    well_formed,
)
from bot.errors import UserError
from bot.image_input import MAX_SIDE, load_reference_image

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
MAX_PIXELS = 4_000_000
# Every refusal the loader may give, by code; anything else is a bug.
CODES = {"empty_image", "image_too_big", "image_too_large", "image_too_small", "image_aspect", "not_an_image",
         "damaged_image", "image_transparent"}
TURNED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def _load(data):
    """The loaded reference, or the refusal's code (a UserError with a one-line message)."""
    try:
        return load_reference_image(data, max_pixels=MAX_PIXELS)
    except UserError as exc:
        assert exc.code in CODES, exc.code
        assert exc.user_message and "\n" not in exc.user_message and len(exc.user_message) < 200
        return exc.code


def expected_refusal(width: int, height: int) -> str | None:
    """What the loader must say about a well-formed picture of this size (None: load it)."""
    if min(width, height) < 32:
        return "image_too_small"
    if max(width, height) / min(width, height) > 10:
        return "image_aspect"
    return None


@FUZZ
@given(image_uploads())
def test_any_upload_gives_an_rgba_picture_or_a_friendly_error(data):
    ref = _load(data)
    if not isinstance(ref, str):
        assert ref.image.mode == "RGBA" and max(ref.size) <= MAX_SIDE and min(ref.size) >= 32
        assert ref.png_bytes().startswith(b"\x89PNG")


def claimed_size(data: bytes) -> tuple[int, int]:
    """The size a forged header claims, read from its bytes as the format defines them."""
    if data.startswith(b"\x89PNG"):
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF"):
        return struct.unpack("<HH", data[6:10])
    width, height = struct.unpack("<ii", data[18:26])  # BMP: a negative height is a top-down picture
    return width, abs(height)


@FUZZ
@given(forged_headers())
def test_forged_huge_headers_are_refused_without_decoding(data):
    width, height = claimed_size(data)
    started = time.perf_counter()
    ref = _load(data)
    assert time.perf_counter() - started < 2.0  # no multi-gigapixel decode was attempted
    if width * height > MAX_PIXELS:
        assert ref == "image_too_large", (width, height, ref)
    elif not isinstance(ref, str):
        assert ref.original_size == (width, height)


@FUZZ
@given(well_formed())
def test_well_formed_pictures_in_any_mode_load_unless_too_small_or_thin(data):
    stored = Image.open(io.BytesIO(data))
    width, height = stored.size
    ref = _load(data)
    refusal = expected_refusal(width, height)
    if refusal:
        assert ref == refusal, (stored.format, stored.mode, stored.size)
        return
    assert not isinstance(ref, str), (ref, stored.format, stored.mode, stored.size)
    # Pillow (13) turns a TIFF by its orientation tag itself when it opens it: its size is upright already.
    turned = stored.format != "TIFF" and stored.getexif().get(0x0112) in TURNED
    upright = (height, width) if turned else (width, height)
    assert ref.image.mode == "RGBA" and ref.size == upright and ref.original_size == (width, height)
    assert ref.original_format == stored.format and ref.notes == []
    assert ref.image.getchannel("A").getextrema() == (255, 255)  # every one is opaque


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(animated())
def test_animations_use_the_first_frame_and_say_so(data):
    first = Image.open(io.BytesIO(data)).convert("RGBA").getpixel((0, 0))
    ref = _load(data)
    assert not isinstance(ref, str) and ref.notes == ["Your picture is animated: I used its first frame."]
    assert ref.image.getpixel((0, 0)) == first
