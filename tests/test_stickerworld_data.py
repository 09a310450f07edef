"""StickerWorld: deterministic renders, exact masks, held-out identities, captions."""

import numpy as np

from bot.schema.prompt_builder import build_prompt
from bot.schema.prompt_parser import parse_prompt
from stickerworld.dataset import caption_for, generate, make_sample, random_scene, sample_reference_scene
from stickerworld.identities import held_out_identities, is_held_out, training_identities
from stickerworld.render import Scene, render


def test_same_seed_gives_the_same_samples():
    first, second = generate(6, seed=3), generate(6, seed=3)
    assert [s.caption for s in first] == [s.caption for s in second]
    for a, b in zip(first, second):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert [s.caption for s in generate(6, seed=4)] != [s.caption for s in first]


def test_mask_covers_exactly_what_the_background_cannot_change():
    identity = training_identities()[0]
    on_forest, mask = render(Scene(identity, "sad", "waving", "full body", "flat", "forest"), 64)
    on_night, mask_night = render(Scene(identity, "sad", "waving", "full body", "flat", "night sky"), 64)
    mask = np.asarray(mask)
    assert np.array_equal(mask, np.asarray(mask_night))
    # Away from the anti-aliased edge, the subject hides the background completely and
    # the background shows completely elsewhere.
    interior = np.zeros_like(mask, dtype=bool)
    interior[1:-1, 1:-1] = np.minimum.reduce([mask[1:-1, 1:-1], mask[:-2, 1:-1], mask[2:, 1:-1],
                                              mask[1:-1, :-2], mask[1:-1, 2:]]) == 255
    forest, night = np.asarray(on_forest, dtype=int)[..., :3], np.asarray(on_night, dtype=int)[..., :3]
    assert np.abs(forest[interior] - night[interior]).max() <= 12  # Lanczos ringing
    outside = mask == 0
    assert np.abs(forest[outside] - night[outside]).mean() > 50
    assert 0.05 < (mask > 127).mean() < 0.6


def test_held_out_identities_never_appear_in_training():
    held = set(held_out_identities())
    assert held and not held & set(training_identities())
    assert all(not is_held_out(s.scene.identity) for s in generate(200, seed=0))
    assert is_held_out(sample_reference_scene().identity)


def test_captions_are_built_by_the_bot_prompt_builder():
    scene = Scene(training_identities()[5], "love", "thumbs up", "close up", "pastel", "night sky")
    caption = caption_for(scene)
    request = parse_prompt("love thumbs up close up pastel night sky " + " ".join(scene.identity.appearance()))
    assert caption == build_prompt(request, subject=scene.identity.subject_words())
    assert scene.identity.subject_words().endswith("character")


def test_backgrounds_differ_where_the_character_is_not():
    import random

    rng = random.Random(0)
    base = random_scene(rng, composition="wide shot")
    corners = {}
    for background in ("plain", "beach", "forest", "night sky", "city", "room"):
        image = make_sample(Scene(base.identity, base.emotion, base.action, "wide shot", base.style, background)).image
        corners[background] = tuple(np.asarray(image.convert("RGB"))[2, 2])
    assert len(set(corners.values())) == 6


def test_each_emotion_has_its_own_mark_inside_the_frame_and_the_mask():
    # The mark beside the head is what keeps an emotion legible at 64 px; every emotion
    # must draw a different one, in frame, and as part of the subject (its mask).
    identity = training_identities()[3]
    emotions = ("happy", "sad", "angry", "surprised", "sleepy", "love")
    for composition in ("close up", "full body", "wide shot"):
        subjects = {}
        for emotion in emotions:
            image, mask = render(Scene(identity, emotion, "sitting", composition, "flat", "plain"), 64)
            subjects[emotion] = np.asarray(image, dtype=int)[..., :3] * (np.asarray(mask)[..., None] > 127)
        for i, a in enumerate(emotions):
            for b in emotions[i + 1:]:
                changed = np.abs(subjects[a] - subjects[b]).sum(-1) > 60
                assert changed.sum() >= 30, (composition, a, b)  # faces alone: 6 px in a wide shot


def test_emotion_region_is_the_face_and_mark_only():
    # Training weights its loss on this region, so it must hold what changes with the
    # emotion (face and mark) and nothing that does not (background, body far from the face).
    from stickerworld.render import emotion_region

    scene = Scene(training_identities()[3], "happy", "waving", "full body", "flat", "beach")
    region = np.asarray(emotion_region(scene)) > 0
    happy, happy_mask = (np.asarray(a, dtype=int) for a in render(scene, 64))
    drawn_by_some_emotion = happy_mask > 16
    for emotion in ("sad", "angry", "surprised", "sleepy", "love"):
        image, mask = render(Scene(scene.identity, emotion, "waving", "full body", "flat", "beach"), 64)
        drawn_by_some_emotion |= np.asarray(mask) > 16
        changed = np.abs(np.asarray(image, dtype=int) - happy).max(-1) > 8
        assert (changed & ~region).sum() <= 0.03 * region.sum(), emotion  # resampling ringing at edges
    assert 0.02 < region.mean() < 0.4
    assert (region & ~drawn_by_some_emotion).sum() <= 0.1 * region.sum()
