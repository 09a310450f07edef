import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from seal_runtime.imaging.subject_mask import (
    center_prior,
    classical_mask,
    compute_subject_mask,
    fill_holes,
    label_components,
    largest_component,
)


def mascot(size=(200, 160), background=(245, 245, 245), colour=(200, 40, 40), noise=0.0, seed=0):
    """A disc with a background-coloured 'eye' inside, on a plain background."""
    w, h = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    draw.ellipse([w * 0.25, h * 0.2, w * 0.75, h * 0.8], fill=colour)
    draw.ellipse([w * 0.45, h * 0.4, w * 0.55, h * 0.5], fill=background)  # a hole in the subject
    if noise:
        array = np.asarray(image).astype(np.float64)
        array += np.random.default_rng(seed).normal(0, noise, array.shape)
        image = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    return image


def disc_truth(size=(200, 160)):
    w, h = size
    truth = Image.new("L", size, 0)
    ImageDraw.Draw(truth).ellipse([w * 0.25, h * 0.2, w * 0.75, h * 0.8], fill=255)
    return np.asarray(truth) > 0


def iou(mask: Image.Image, truth: np.ndarray) -> float:
    m = np.asarray(mask) >= 128
    return (m & truth).sum() / (m | truth).sum()


def test_transparent_picture_uses_its_alpha():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse([20, 20, 80, 80], fill=(10, 200, 10, 255))
    mask, source = classical_mask(rgba)
    assert source == "alpha"
    assert np.array_equal(np.asarray(mask), np.asarray(rgba.getchannel("A")))


def test_opaque_rgba_is_not_alpha():
    rgba = mascot().convert("RGBA")
    _, source = classical_mask(rgba)
    assert source == "flood_fill"


def test_plain_background_is_flood_filled_with_holes_filled():
    mask, source = classical_mask(mascot())
    assert source == "flood_fill"
    assert mask.mode == "L" and mask.size == (200, 160)
    assert set(np.unique(np.asarray(mask))) <= {0, 255}
    assert iou(mask, disc_truth()) > 0.95
    assert mask.getpixel((100, 72)) == 255  # the background-coloured eye is subject


def test_noisy_photo_like_plain_background_still_works():
    mask, source = classical_mask(mascot(noise=8.0))
    assert source == "flood_fill"
    assert iou(mask, disc_truth()) > 0.9


def test_large_picture_is_masked_at_full_size():
    size = (1200, 900)
    mask, source = classical_mask(mascot(size))
    assert source == "flood_fill" and mask.size == size
    assert iou(mask, disc_truth(size)) > 0.95


def test_two_tone_border_background():
    image = mascot()
    ImageDraw.Draw(image).rectangle([0, 120, 199, 159], fill=(120, 180, 255))  # floor of another colour
    ImageDraw.Draw(image).ellipse([50, 32, 150, 128], fill=(200, 40, 40))
    mask, source = classical_mask(image)
    assert source == "flood_fill"
    assert mask.getpixel((5, 5)) == 0 and mask.getpixel((5, 150)) == 0
    assert mask.getpixel((100, 80)) == 255


def test_only_the_largest_piece_is_kept():
    image = mascot()
    ImageDraw.Draw(image).rectangle([5, 5, 15, 15], fill=(0, 0, 255))  # a small stray blob
    mask, _ = classical_mask(image)
    assert mask.getpixel((10, 10)) == 0


@pytest.mark.parametrize("make", [
    lambda: Image.new("RGB", (120, 120), "white"),  # nothing but background
    lambda: Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)),  # busy
])
def test_degenerate_cases_fall_back_to_centre_ellipse(make):
    mask, source = classical_mask(make())
    assert source == "center_prior"
    array = np.asarray(mask)
    assert array[60, 60] == 255 and array[0, 0] == 0
    assert 0.3 < (array > 0).mean() < 0.5


def test_subject_filling_the_frame_falls_back():
    image = Image.new("RGB", (100, 100), "white")
    ImageDraw.Draw(image).rectangle([1, 1, 98, 98], fill="red")
    _, source = classical_mask(image)
    assert source == "center_prior"


def test_center_prior_shape():
    mask = center_prior((200, 100))
    assert mask.size == (200, 100)
    assert mask.getpixel((100, 50)) == 255 and mask.getpixel((5, 50)) == 0


def test_label_components_counts_pieces():
    mask = np.zeros((10, 10), bool)
    mask[1:3, 1:3] = True
    mask[5:9, 5:9] = True
    mask[0, 9] = True
    labels = label_components(mask)
    assert (labels == -1).sum() == (~mask).sum()
    assert len(np.unique(labels[mask])) == 3
    assert largest_component(mask).sum() == 16


def test_label_components_follows_a_serpentine():
    mask = np.zeros((64, 64), bool)
    mask[::2, :] = True
    for k, row in enumerate(range(1, 64, 2)):
        mask[row, 63 if k % 2 == 0 else 0] = True
    assert len(np.unique(label_components(mask)[mask])) == 1


def test_fill_holes_fills_only_enclosed_gaps():
    ring = np.zeros((9, 9), bool)
    ring[2:7, 2:7] = True
    ring[4, 4] = False
    filled = fill_holes(ring)
    assert filled[4, 4] and not filled[0, 0]


def test_compute_subject_mask_order_alpha_then_sam_then_classical():
    class FakeSam:
        calls = 0

        def mask(self, image):
            FakeSam.calls += 1
            m = Image.new("L", image.size, 0)
            ImageDraw.Draw(m).rectangle([10, 10, 50, 50], fill=255)
            return m

    transparent = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).ellipse([20, 20, 80, 80], fill=(10, 200, 10, 255))
    assert compute_subject_mask(transparent, FakeSam())[1] == "alpha"
    assert FakeSam.calls == 0
    mask, source = compute_subject_mask(mascot(), FakeSam())
    assert source == "sam" and mask.getpixel((30, 30)) == 255
    assert compute_subject_mask(mascot())[1] == "flood_fill"


def test_sam_failures_fall_back_to_classical():
    def broken(image):
        raise RuntimeError("CUDA out of memory")

    assert compute_subject_mask(mascot(), broken)[1] == "flood_fill"
    assert compute_subject_mask(mascot(), lambda image: None)[1] == "flood_fill"
    assert compute_subject_mask(mascot(), lambda image: Image.new("L", image.size, 255))[1] == "flood_fill"


def test_mask_modules_do_not_import_torch():
    code = ("import sys; import seal_runtime.imaging.subject_mask, seal_runtime.imaging.cutout; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
