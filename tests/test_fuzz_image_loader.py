"""Fuzzing the /setref image loader beyond tests/test_image_input.py's byte mutations:
well-formed pictures in every mode and format, forged headers claiming huge sizes with
valid checksums, animations, junk EXIF orientations, and mutations of all of those.
Whatever arrives, the answer is a normalised RGBA picture or a friendly UserError."""

import time

from hypothesis import HealthCheck, given, settings

from bot.errors import UserError
from bot.image_input import MAX_SIDE, load_reference_image
from benchmarks.fakes.fuzz_inputs import animated, forged_headers, image_uploads, well_formed

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
MAX_PIXELS = 4_000_000


def _load(data):
    try:
        return load_reference_image(data, max_pixels=MAX_PIXELS)
    except UserError as exc:
        assert exc.user_message and exc.code
        return None


@FUZZ
@given(image_uploads())
def test_any_upload_gives_an_rgba_picture_or_a_friendly_error(data):
    ref = _load(data)
    if ref is not None:
        assert ref.image.mode == "RGBA" and max(ref.size) <= MAX_SIDE and min(ref.size) >= 32
        assert ref.png_bytes().startswith(b"\x89PNG")


@FUZZ
@given(forged_headers())
def test_forged_huge_headers_are_refused_without_decoding(data):
    started = time.perf_counter()
    ref = _load(data)
    assert time.perf_counter() - started < 2.0  # no multi-gigapixel decode was attempted
    if ref is not None:
        assert ref.original_size[0] * ref.original_size[1] <= MAX_PIXELS


@FUZZ
@given(well_formed())
def test_well_formed_pictures_in_any_mode_load_unless_too_small_or_thin(data):
    ref = _load(data)
    if ref is None:
        return
    assert ref.image.mode == "RGBA"


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(animated())
def test_animations_use_the_first_frame_and_say_so(data):
    ref = _load(data)
    assert ref is not None and any("first frame" in note for note in ref.notes)
