"""The sticker look: cut-outs of plain backgrounds (close-ups included), outline, shadow, scene frames."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from seal_runtime.api.config import GenerationSettings
from seal_runtime.imaging.cutout import cut_out, prepare_sticker
from seal_runtime.imaging.sticker_look import (
    StickerLook,
    dilate_disk,
    dress_cutout,
    dress_scene,
)

SIDE = 512


def noisy_white(size: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(250 + rng.normal(0, noise, (size, size, 3)), 0, 255)


def close_up(size=64, noise=12.0, seed=0) -> Image.Image:
    """'love thumbs up close up' as a small model draws it: a big body running off the bottom
    and both sides, a heart above it, on a speckled white background."""
    array = noisy_white(size, noise, seed)
    image = Image.fromarray(array.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse([-size * 0.2, size * 0.35, size * 1.2, size * 1.6], fill=(40, 150, 80), outline=(10, 10, 10), width=2)
    draw.ellipse([size * 0.3, size * 0.55, size * 0.4, size * 0.65], fill=(230, 40, 70))  # heart eyes
    draw.polygon([(size * 0.6, size * 0.1), (size * 0.8, size * 0.1), (size * 0.7, size * 0.28)], fill=(230, 40, 70))
    return image


def full_body(size=64, seed=0) -> Image.Image:
    image = Image.fromarray(noisy_white(size, 6.0, seed).astype(np.uint8))
    ImageDraw.Draw(image).ellipse(
        [size * 0.3, size * 0.2, size * 0.7, size * 0.85], fill=(30, 120, 220), outline=(0, 0, 0), width=1
    )
    return image


def border(alpha: np.ndarray) -> np.ndarray:
    return np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])


def alpha_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"))


# -- cut-out ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_close_up_on_plain_background_is_cut_out_and_transparent_at_the_border(seed):
    image = close_up(seed=seed)
    sticker = prepare_sticker(image, background="plain", look=StickerLook())
    alpha = alpha_of(sticker)
    assert sticker.size == (SIDE, SIDE)
    assert border(alpha).max() == 0  # transparent all round, the cut bottom edge included
    assert (alpha == 255).mean() > 0.25  # the body is there
    assert (alpha == 0).mean() > 0.2  # and the background is gone


def test_close_up_is_not_trusted_without_the_request_saying_plain():
    """Why the runtime is told the background: from the picture alone, a close-up covering most
    of the border looks like a scene and is kept whole (the shipped opaque square)."""
    assert (alpha_of(cut_out(close_up(), background="auto")) == 255).all()
    assert (alpha_of(cut_out(close_up(), background="scene")) == 255).all()
    assert (alpha_of(cut_out(close_up(), background="plain")) == 0).mean() > 0.2


def test_specks_of_background_noise_are_dropped_and_marks_kept():
    image = full_body(128)
    draw = ImageDraw.Draw(image)
    draw.point([(8, 120), (9, 120), (120, 8)], fill=(120, 60, 160))  # noise specks
    draw.ellipse([100, 30, 116, 46], fill=(230, 40, 70))  # a heart beside the character
    alpha = alpha_of(cut_out(image, background="plain"))
    assert alpha[120, 8] == 0 and alpha[8, 120] == 0
    assert alpha[38, 108] == 255


def test_edge_is_crisp_and_anti_aliased_after_scaling_up():
    sticker = dress_cutout(cut_out(full_body(64), background="plain"), StickerLook(outline=False, shadow=False))
    row = alpha_of(sticker)[SIDE // 2]
    partial = np.flatnonzero((row > 0) & (row < 255))
    assert 2 <= len(partial) <= 10  # a couple of soft pixels at each edge, not an 8x-blurred band
    assert (row == 255).sum() > 100


# -- outline and shadow -------------------------------------------------------------------------
def subject_and_look(**look):
    subject = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(subject).ellipse([20, 20, 180, 180], fill=(30, 120, 220, 255))
    return subject, dress_cutout(subject, StickerLook(**look))


def white_run(sticker: Image.Image) -> int:
    """Opaque white pixels on the middle row left of the subject: the outline's width."""
    rgba = np.asarray(sticker)[SIDE // 2]
    first_blue = int(np.flatnonzero((rgba[:, 2] > 180) & (rgba[:, 0] < 80))[0])
    left = rgba[:first_blue]
    return int(((left[:, :3] >= 250).all(axis=1) & (left[:, 3] >= 250)).sum())


def test_white_outline_is_about_two_percent_of_the_side():
    _, outlined = subject_and_look(shadow=False)
    assert 8 <= white_run(outlined) <= 12  # 2 % of 512 = 10 px


def test_outline_width_is_configurable_and_off_by_option():
    widths = [white_run(subject_and_look(shadow=False, outline_fraction=f)[1]) for f in (0.01, 0.02, 0.04)]
    assert widths[0] < widths[1] < widths[2] and 18 <= widths[2] <= 22
    _, off = subject_and_look(outline=False, shadow=False)
    rgb = np.asarray(off.convert("RGB"))[alpha_of(off) > 0]
    assert not (rgb >= 250).all(axis=1).any()  # no white pixel anywhere


def test_soft_drop_shadow_falls_below():
    _, sticker = subject_and_look()
    rgba = np.asarray(sticker)
    column = rgba[:, SIDE // 2]
    white = np.flatnonzero((column[:, :3] >= 250).all(axis=1) & (column[:, 3] >= 250))
    top, bottom = int(white.min()), int(white.max())  # the outline above and below the subject
    below, above = column[bottom + 4], column[top - 4]
    assert 0 < below[3] < 128 and max(below[:3]) < 60  # a soft dark shadow under the sticker
    assert below[3] > above[3]  # it falls down, not up
    _, unshadowed = subject_and_look(shadow=False)
    lowest = int(np.flatnonzero(alpha_of(unshadowed)[:, SIDE // 2] > 0).max())
    assert alpha_of(unshadowed)[lowest + 2 :, SIDE // 2].max() == 0  # off: nothing under the outline


def test_dilation_matches_the_definition():
    rng = np.random.default_rng(3)
    alpha = (rng.random((40, 40)) > 0.97).astype(np.uint8) * rng.integers(1, 256, (40, 40)).astype(np.uint8)
    radius = 3.6
    slow = np.zeros_like(alpha)
    for y in range(40):
        for x in range(40):
            y0, y1, x0, x1 = max(0, y - 4), min(40, y + 5), max(0, x - 4), min(40, x + 5)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            near = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
            slow[y, x] = alpha[y0:y1, x0:x1][near].max()
    assert np.array_equal(dilate_disk(alpha, radius), slow)


# -- scenes -------------------------------------------------------------------------------------
def beach(size=64) -> Image.Image:
    y = np.linspace(0, 1, size)[:, None, None]
    array = np.repeat(np.array([90, 160, 255]) * (1 - y) + np.array([200, 230, 255]) * y, size, axis=1)
    array[int(size * 0.65) :] = [230, 200, 140]
    return Image.fromarray(array.astype(np.uint8))


def test_scene_keeps_its_background_in_a_rounded_frame():
    sticker = prepare_sticker(beach(), background="scene", look=StickerLook())
    alpha = alpha_of(sticker)
    assert sticker.size == (SIDE, SIDE)
    assert alpha[0, 0] == 0 and alpha[8, 8] == 0  # rounded, inset corners
    assert (alpha[SIDE // 4 : 3 * SIDE // 4, SIDE // 4 : 3 * SIDE // 4] == 255).all()  # the scene itself
    top = sticker.getpixel((SIDE // 2, SIDE // 4))
    assert top[2] > top[0]  # still the sky


def test_scene_frame_none_is_the_plain_square():
    sticker = dress_scene(beach(), StickerLook(scene_frame="none"))
    assert sticker.size == (SIDE, SIDE) and (alpha_of(sticker) == 255).all()


def test_look_comes_from_the_generation_settings():
    look = StickerLook.from_generation(
        GenerationSettings(outline=False, outline_fraction=0.03, shadow=False, scene_frame="none", sticker_side=256)
    )
    assert (look.outline, look.outline_fraction, look.shadow, look.scene_frame, look.side) == (
        False,
        0.03,
        False,
        "none",
        256,
    )
    with pytest.raises(ValueError):
        StickerLook(scene_frame="polaroid")


def test_without_a_look_prepare_sticker_keeps_its_old_shape():
    plain = prepare_sticker(full_body(128), background="plain")
    assert plain.width == plain.height < SIDE and plain.getpixel((0, 0))[3] == 0


# -- real generations ---------------------------------------------------------------------------
@pytest.mark.slow
def test_builtin_close_up_generations_are_cut_out_and_transparent_at_the_border():
    """The shipped model, a few adaptation steps, 'love thumbs up close up' at three seeds
    through the runtime's engine: each sticker is cut out (transparent border, a solid subject)."""
    import dataclasses
    from pathlib import Path

    from bot.schema.prompt_builder import build_prompt
    from bot.schema.prompt_parser import parse_prompt
    from seal_runtime.api.config import AdaptationSettings, RuntimeSettings
    from seal_runtime.api.protocol import JobRequest
    from seal_runtime.engine import StickerEngine
    from seal_runtime.models.loader import load_backbone

    reference = Path(__file__).parents[1] / "adapters" / "assets" / "sample_reference.png"
    engine = StickerEngine(load_backbone(RuntimeSettings()))
    prompt = build_prompt(parse_prompt("love thumbs up close up"))
    request = JobRequest(
        "close-up",
        reference.read_bytes(),
        (prompt,) * 3,
        (1, 2, 3),
        dataclasses.asdict(AdaptationSettings(steps=4)),
        dataclasses.asdict(GenerationSettings()),
        background="plain",
    )
    result = engine.finish(request, engine.run(request))
    for png in result.images_png:
        sticker = Image.open(io.BytesIO(png))
        alpha = alpha_of(sticker.convert("RGBA"))
        assert sticker.size == (SIDE, SIDE)
        assert border(alpha).max() == 0
        assert (alpha == 255).mean() > 0.2 and (alpha == 0).mean() > 0.2
