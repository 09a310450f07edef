import logging

import numpy as np
import pytest
from PIL import Image, ImageDraw

from seal_runtime.imaging.cutout import (
    WORK_SIDE,
    cut_out,
    drop_specks,
    has_plain_background,
    prepare_sticker,
    trim_and_pad,
)


def generated(size=64, background=(255, 255, 255), noise=0.0, seed=0):
    """What a generator gives for 'sticker, plain background': a character in the middle."""
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse([size * 0.3, size * 0.2, size * 0.7, size * 0.85], fill=(30, 120, 220), outline=(0, 0, 0),
                 width=max(1, size // 64))
    draw.ellipse([size * 0.42, size * 0.35, size * 0.5, size * 0.45], fill=background)  # eye
    if noise:
        array = np.asarray(image).astype(np.float64) + np.random.default_rng(seed).normal(0, noise, (size, size, 3))
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    return image


def scene(size=128):
    """'on a beach': sky gradient above sand, character in front."""
    y = np.linspace(0, 1, size)[:, None, None]
    sky = np.array([90, 160, 255]) * (1 - y) + np.array([200, 230, 255]) * y
    array = np.repeat(sky, size, axis=1)
    array[int(size * 0.65):, :] = [230, 200, 140]
    image = Image.fromarray(array.astype(np.uint8))
    ImageDraw.Draw(image).ellipse([40, 30, 88, 110], fill=(30, 120, 220))
    return image


@pytest.mark.parametrize("size", [64, 512])
def test_plain_background_becomes_transparent(size):
    image = generated(size)
    assert has_plain_background(image)
    out = cut_out(image)
    alpha = np.asarray(out.getchannel("A"))
    assert out.mode == "RGBA" and out.size == image.size
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert alpha[size // 2, size // 2] == 255
    eye = int(size * 0.46), int(size * 0.4)
    assert alpha[eye[1], eye[0]] == 255  # enclosed background colour is part of the character


def test_a_picture_over_the_work_side_is_cut_at_its_own_size_along_its_own_outline():
    """Pictures larger than WORK_SIDE are analysed scaled down; the mask must come back at the
    picture's size and in the right place (a 1500 px sticker once crashed on the shapes)."""
    size = 1500
    assert size > WORK_SIDE
    out = cut_out(generated(size))
    alpha = np.asarray(out.getchannel("A"))
    assert out.size == (size, size)
    assert alpha[0].max() == alpha[-1].max() == alpha[:, 0].max() == alpha[:, -1].max() == 0
    assert alpha[size // 2, size // 2] == 255
    # The body's left and right edges on the middle row are at 30 % and 70 % of the side.
    opaque = np.flatnonzero(alpha[size // 2] >= 128)
    assert abs(opaque[0] - 0.3 * size) <= 4 and abs(opaque[-1] - 0.7 * size) <= 4


def test_edge_is_soft_one_or_two_pixels():
    out = cut_out(generated(256))
    alpha = np.asarray(out.getchannel("A"))
    row = alpha[128]
    partial = np.where((row > 0) & (row < 255))[0]
    assert 2 <= len(partial) <= 8  # a few soft pixels at each of the two edges, not a wide blur
    assert (alpha == 255).mean() > 0.15


def test_noisy_plain_background_is_still_cut():
    image = generated(128, noise=6.0)
    assert has_plain_background(image)
    alpha = np.asarray(cut_out(image).getchannel("A"))
    assert (alpha[:4] == 0).mean() > 0.95


def test_scene_background_is_kept():
    image = scene()
    assert not has_plain_background(image)
    out = cut_out(image)
    assert out.mode == "RGBA"
    assert (np.asarray(out.getchannel("A")) == 255).all()
    assert np.array_equal(np.asarray(out.convert("RGB")), np.asarray(image))


def test_noise_image_is_not_plain():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert not has_plain_background(noise)
    assert (np.asarray(cut_out(noise).getchannel("A")) == 255).all()


def test_blank_image_is_not_emptied():
    out = cut_out(Image.new("RGB", (64, 64), "white"))
    assert (np.asarray(out.getchannel("A")) == 255).all()


def test_already_transparent_is_left_alone():
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse([10, 10, 50, 50], fill=(255, 255, 255, 255))  # white subject!
    assert has_plain_background(rgba)
    assert np.array_equal(np.asarray(cut_out(rgba)), np.asarray(rgba))


def test_trim_and_pad_centres_subject_on_transparent_square():
    rgba = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (20, 50, 100, 90))  # 80 x 40 subject off-centre
    out = trim_and_pad(rgba, 0.1)
    assert out.width == out.height == 100  # 80 / (1 - 2 * 0.1)
    assert out.getchannel("A").getbbox() == (10, 30, 90, 70)
    assert out.getpixel((0, 0))[3] == 0


def test_trim_and_pad_without_margin_and_on_empty_image():
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (10, 10, 20, 30))
    assert trim_and_pad(rgba, 0).size == (20, 20)
    assert trim_and_pad(Image.new("RGBA", (30, 20), (0, 0, 0, 0))).size[0] >= 30


def test_prepare_sticker_cuts_plain_and_keeps_scene():
    plain = prepare_sticker(generated(128))
    assert plain.width == plain.height and plain.getpixel((0, 0))[3] == 0
    kept = prepare_sticker(scene())
    assert kept.size == (128, 128) and kept.getpixel((0, 0))[3] == 255


# -- cut along a segmenter's mask (the runtime's rembg or SAM: `mask(image) -> L`) -------------

def band_mask(size, values=(0, 255), *, rows=None):
    """An L mask: `values[1]` over the middle half of the rows, `values[0]` elsewhere."""
    mask = np.full((size, size), values[0], np.uint8)
    top, bottom = rows or (size // 4, 3 * size // 4)
    mask[top:bottom] = values[1]
    return Image.fromarray(mask, "L")


def test_a_plain_background_is_cut_along_the_segmenters_mask_not_the_flood_fill():
    image = generated(64)
    out = cut_out(image, background="plain", masker=lambda rgb: band_mask(64))
    alpha = np.asarray(out.getchannel("A"))
    assert out.size == (64, 64) and (alpha[16:48] == 255).all() and (alpha[:16] == 0).all() and (alpha[48:] == 0).all()


def test_an_object_with_a_mask_method_is_a_segmenter_too_and_it_gets_the_rgb_picture():
    seen = []

    class Segmenter:
        def mask(self, rgb):
            seen.append(rgb.mode)
            return band_mask(64)

    alpha = np.asarray(cut_out(generated(64).convert("RGBA"), background="plain", masker=Segmenter()).getchannel("A"))
    assert seen == ["RGB"] and alpha[32, 32] == 255 and alpha[0, 32] == 0


def test_a_smaller_mask_is_scaled_to_the_picture():
    alpha = np.asarray(cut_out(generated(128), background="plain", masker=lambda rgb: band_mask(32)).getchannel("A"))
    assert alpha.shape == (128, 128) and alpha[64, 64] == 255 and alpha[5, 64] == 0 and alpha[122, 64] == 0


def test_a_nearly_clear_or_nearly_solid_mask_value_is_made_exact_and_the_rest_kept():
    def mask_of(inside, outside):
        return lambda rgb: band_mask(64, (outside, inside))

    for outside, expected in ((7, 0), (8, 8)):
        alpha = np.asarray(cut_out(generated(64), background="plain", masker=mask_of(255, outside)).getchannel("A"))
        assert alpha[0, 0] == expected, outside
    for inside, expected in ((248, 255), (247, 247)):
        alpha = np.asarray(cut_out(generated(64), background="plain", masker=mask_of(inside, 0)).getchannel("A"))
        assert alpha[32, 32] == expected, inside


def test_the_mask_never_uncovers_a_pixel_that_was_already_transparent():
    image = generated(64).convert("RGBA")
    for xy in ((30, 30), (31, 30), (30, 31), (31, 31)):  # a few clear pixels: not yet a transparent picture
        image.putpixel(xy, (0, 0, 0, 0))
    alpha = np.asarray(cut_out(image, background="plain", masker=lambda rgb: band_mask(64)).getchannel("A"))
    assert alpha[30, 30] == alpha[31, 31] == 0 and alpha[32, 32] == 255


@pytest.mark.parametrize("answer", ["raises", "none", "keeps_all", "keeps_too_little"])
def test_a_failing_or_implausible_segmenter_falls_back_to_the_flood_fill(answer):
    image = generated(64)

    def masker(rgb):
        if answer == "raises":
            raise RuntimeError("segmenter crashed")
        if answer == "none":
            return None
        if answer == "keeps_all":  # 99 % kept: removes nearly nothing
            return band_mask(64, (0, 255), rows=(0, 63))
        return _one_pixel_mask(64)

    flood = np.asarray(cut_out(image, background="plain").getchannel("A"))
    assert np.array_equal(np.asarray(cut_out(image, background="plain", masker=masker).getchannel("A")), flood)


def test_a_mask_value_of_exactly_128_counts_as_kept():
    image = generated(64)
    # Half the picture at 128 and the rest clear: kept 50 %, a plausible cut, used as it is.
    alpha = np.asarray(cut_out(image, background="plain", masker=lambda rgb: band_mask(64, (0, 128))).getchannel("A"))
    assert alpha[32, 32] == 128 and alpha[0, 32] == 0
    # At 127 nothing counts as kept: the flood fill's cut instead.
    alpha = np.asarray(cut_out(image, background="plain", masker=lambda rgb: band_mask(64, (0, 127))).getchannel("A"))
    assert np.array_equal(alpha, np.asarray(cut_out(image, background="plain").getchannel("A")))


def test_a_two_level_mask_is_read_as_clear_and_solid():
    # SAM-style boolean masks come as mode "1": read as 0 and 255, not as 0 and 1.
    alpha = np.asarray(cut_out(generated(64), background="plain",
                               masker=lambda rgb: band_mask(64).convert("1")).getchannel("A"))
    assert (alpha[16:48] == 255).all() and (alpha[:16] == 0).all()


def test_a_failing_segmenter_is_logged_with_its_traceback(caplog):
    def masker(rgb):
        raise RuntimeError("segmenter crashed")

    with caplog.at_level(logging.WARNING, logger="seal_runtime.imaging.cutout"):
        cut_out(generated(64), background="plain", masker=masker)
    (record,) = caplog.records
    assert record.getMessage() == "segmenter failed on a sticker; using the flood fill"
    assert record.exc_info and record.exc_info[0] is RuntimeError


def _one_pixel_mask(size):
    mask = np.zeros((size, size), np.uint8)
    mask[size // 2, size // 2] = 255  # 1 of 4096 pixels: under the 0.5 % a sticker keeps at least
    return Image.fromarray(mask, "L")


def test_the_mask_decides_exactly_at_the_plausibility_edges():
    image = generated(100)
    # 2 % removed (rows 0-1 of 100) is enough; 1 % is not.
    cut = np.asarray(cut_out(image, background="plain", masker=lambda rgb: band_mask(100, rows=(2, 100))).getchannel("A"))
    assert (cut[:2] == 0).all() and (cut[2:] == 255).all()
    kept_99 = cut_out(image, background="plain", masker=lambda rgb: band_mask(100, rows=(1, 100)))
    assert np.array_equal(np.asarray(kept_99.getchannel("A")), np.asarray(cut_out(image, background="plain").getchannel("A")))
    # 0.5 % kept (50 of 10,000 pixels) is a subject; 0.49 % is not.
    def kept(n):
        mask = np.zeros((100, 100), np.uint8)
        mask.flat[:n] = 255
        return lambda rgb: Image.fromarray(mask, "L")

    assert (np.asarray(cut_out(image, background="plain", masker=kept(50)).getchannel("A")) == 255).sum() == 50
    assert (np.asarray(cut_out(image, background="plain", masker=kept(49)).getchannel("A")) == 255).sum() != 49


def test_a_segmenter_is_used_only_when_the_plain_background_was_asked_for():
    calls = []
    image = generated(64)

    def masker(rgb):
        calls.append(1)
        return band_mask(64)

    cut_out(image, background="auto", masker=masker)
    cut_out(scene(), background="scene", masker=masker)
    assert calls == []


# -- the flood fill's decisions at their edges ------------------------------------------------

def ring(height, width):
    """The (row, column) positions of the 2-pixel border ring the background is read from."""
    rows, cols = np.mgrid[0:height, 0:width]
    inside = (rows >= 2) & (rows < height - 2) & (cols >= 2) & (cols < width - 2)
    return np.argwhere(~inside)


def border_of(height, width, counts):
    """A picture whose border ring holds `counts[colour]` pixels of each colour, in that order."""
    array = np.full((height, width, 3), 128, np.uint8)
    positions = ring(height, width)
    assert sum(counts.values()) == len(positions)
    start = 0
    for colour, n in counts.items():
        for r, c in positions[start : start + n]:
            array[r, c] = colour
        start += n
    return Image.fromarray(array)


WHITE, RED, GREEN, BLUE = (255, 255, 255), (220, 30, 30), (30, 200, 30), (30, 30, 220)


def test_plain_means_three_quarters_of_the_border_exactly():
    assert len(ring(100, 100)) == 784
    assert has_plain_background(border_of(100, 100, {WHITE: 588, BLUE: 196}))  # 75 %
    assert not has_plain_background(border_of(100, 100, {WHITE: 587, BLUE: 197}))


def test_asked_for_plain_means_three_tenths_of_the_border_exactly():
    assert len(ring(102, 102)) == 800
    at_edge = border_of(102, 102, {WHITE: 240, RED: 187, GREEN: 187, BLUE: 186})  # 30 %, the most common
    assert has_plain_background(at_edge, asked=True) and not has_plain_background(at_edge)
    assert not has_plain_background(border_of(102, 102, {WHITE: 239, RED: 187, GREEN: 187, BLUE: 187}), asked=True)


def test_plain_allows_a_spread_up_to_a_tolerance_of_40_exactly():
    # Half the border 16 levels of red under grey 200, half 16 over: a spread of 16, a tolerance of 2.5 x 16.
    def spread_by(d):
        return border_of(100, 100, {(200 - d, 200, 200): 392, (200 + d, 200, 200): 392})

    assert has_plain_background(spread_by(16))  # tolerance 40.0
    assert not has_plain_background(spread_by(17))  # 42.5


def halo_sticker(size=128):
    """A blue disc with a pale grey halo (60 levels from white) on white: a small model's haze."""
    image = Image.new("RGB", (size, size), WHITE)
    draw = ImageDraw.Draw(image)
    draw.ellipse([size * 0.2, size * 0.2, size * 0.8, size * 0.8], fill=(220, 220, 220))
    draw.ellipse([size * 0.3, size * 0.3, size * 0.7, size * 0.7], fill=BLUE)
    return image


def test_asked_for_plain_the_background_takes_in_pale_haze_that_auto_keeps():
    asked = np.asarray(cut_out(halo_sticker(), background="plain").getchannel("A"))
    auto = np.asarray(cut_out(halo_sticker(), background="auto").getchannel("A"))
    halo = (64, 32)  # between the disc and the halo's outer edge
    assert asked[halo] == 0 and auto[halo] == 255 and asked[64, 64] == auto[64, 64] == 255


def test_a_plain_picture_asked_as_a_scene_is_kept_whole():
    out = cut_out(generated(64), background="scene")
    assert out.mode == "RGBA" and (np.asarray(out.getchannel("A")) == 255).all()


def test_an_unknown_background_is_refused_by_name():
    with pytest.raises(ValueError) as refused:
        cut_out(generated(64), background="beach")
    assert str(refused.value) == "background must be one of ('auto', 'plain', 'scene'), got 'beach'"


def framed(frame_extra: int) -> Image.Image:
    """200 x 200: a white 1-pixel frame (796 pixels) plus `frame_extra` white pixels, the rest blue."""
    array = np.full((200, 200, 3), BLUE, np.uint8)
    array[0], array[-1], array[:, 0], array[:, -1] = WHITE, WHITE, WHITE, WHITE
    array[1, 1 : 1 + frame_extra] = WHITE
    return Image.fromarray(array)


def test_a_cut_that_removes_exactly_two_percent_is_made_and_one_that_removes_less_is_not():
    cut = np.asarray(cut_out(framed(4), background="plain", edge_px=0).getchannel("A"))  # 800 = 2 %
    assert (cut[0] == 0).all() and (cut[100] == 255).sum() == 198
    assert (np.asarray(cut_out(framed(0), background="plain").getchannel("A")) == 255).all()  # 1.99 %


def test_a_cut_that_keeps_exactly_half_a_percent_is_made_and_one_that_keeps_less_is_not():
    def block(pixels: int) -> Image.Image:
        image = Image.new("RGB", (200, 200), WHITE)
        image.paste(BLUE, (90, 90, 90 + pixels // 10, 100))  # 10 rows high
        return image

    kept = np.asarray(cut_out(block(200), background="plain", edge_px=0).getchannel("A"))  # 0.5 %
    assert (kept == 255).sum() == 200
    assert (np.asarray(cut_out(block(190), background="plain").getchannel("A")) == 255).all()  # 0.475 %


def test_the_soft_edge_follows_edge_px():
    def ramp(edge_px):
        row = np.asarray(cut_out(generated(256), edge_px=edge_px).getchannel("A"))[128]
        return row[(row > 0) & (row < 255)]

    assert len(ramp(0)) == 0  # 0: a hard edge
    assert len(ramp(1.0)) > 0  # 1 px is still blurred
    default = ramp(1.5)
    assert len(default) == 8 and 40 <= default[1] <= 70  # a blur of 0.75 px: 5, 54, 201, 250 at each edge


def test_specks_at_exactly_the_speck_share_are_kept_and_a_lone_pixel_beside_a_small_piece():
    subject = np.zeros((60, 60), bool)
    subject[0:20, 0:50] = True  # the biggest piece: 1000 pixels
    subject[30:33, 0:10] = True  # 30 pixels: exactly 3 % of it
    subject[40:42, 0:14] = True  # 28 pixels: under
    kept = drop_specks(subject)
    assert kept[31, 5] and not kept[41, 5] and kept[10, 10]
    small = np.zeros((20, 20), bool)
    small[0:2, 0:5] = True  # 10 pixels: 3 % of it is under one pixel
    small[10, 10] = True
    assert drop_specks(small)[10, 10]


def test_a_close_up_counts_as_plain_only_when_plain_was_asked_for():
    from tests.test_sticker_look import close_up

    assert has_plain_background(close_up(), asked=True) and not has_plain_background(close_up())


def test_a_picture_with_real_transparency_is_plain_whatever_its_colours():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    alpha = np.zeros((64, 64), np.uint8)
    alpha[16:48, 16:48] = 255
    assert has_plain_background(Image.fromarray(np.dstack([grey, alpha]), "LA"))


def test_prepare_sticker_passes_the_segmenter_and_its_look_and_margin_on():
    from seal_runtime.imaging.sticker_look import StickerLook

    cut = prepare_sticker(generated(64), background="plain", masker=lambda rgb: band_mask(64), margin_fraction=0)
    assert cut.size == (64, 64)  # the band is 64 wide and 32 high: trimmed to it, squared, no margin
    assert (np.asarray(cut.getchannel("A"))[16:48] == 255).all()
    look = StickerLook(side=96)
    assert prepare_sticker(generated(64), background="plain", look=look).size == (96, 96)
    assert prepare_sticker(scene(), background="scene", look=look).size == (96, 96)


def test_trim_and_pad_reads_alpha_over_eight_as_visible_and_pads_with_clear_black():
    image = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    image.paste((200, 40, 40, 255), (20, 20, 40, 40))
    image.putpixel((5, 30), (200, 40, 40, 8))  # at the threshold: not part of the subject
    assert trim_and_pad(image, 0).size == (20, 20)
    image.putpixel((5, 30), (200, 40, 40, 9))
    assert trim_and_pad(image, 0).size == (35, 35)
    padded = trim_and_pad(Image.new("RGBA", (20, 20), (200, 40, 40, 255)))  # the default 5 % margin
    assert padded.size == (22, 22)  # 20 + 2 x round(20 x 0.05 / 0.9)
    pixels = np.asarray(padded)
    assert (pixels[0] == 0).all() and (pixels[:, 0] == 0).all() and (pixels[1:21, 1:21, 3] == 255).all()


def test_trim_and_pad_takes_a_picture_without_alpha():
    assert trim_and_pad(Image.new("RGB", (30, 20), "red"), 0).size == (30, 30)
