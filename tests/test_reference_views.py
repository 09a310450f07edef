"""Views of the one reference (seal_runtime/ttf/reference_views.py) and how adaptation draws them."""

import torch

from seal_runtime.api.config import AdaptationSettings
from seal_runtime.ttf.adaptation import adapt_concept, draw_batch
from seal_runtime.ttf.reference_views import make_views, subject_box
from tests.adaptation_helpers import character_on_a_background


def test_views_move_the_masked_subject_onto_plain_backgrounds():
    reference, mask = character_on_a_background(64)
    images, masks = make_views(reference, mask, 6, torch.Generator().manual_seed(0))
    assert images.shape == (7, 3, 64, 64) and masks.shape == (7, 1, 64, 64)
    assert torch.equal(images[0], reference[0]) and torch.equal(masks[0], mask[0])
    subject_colour = reference[0][:, mask[0, 0] > 0.5].mean(dim=1)
    areas = []
    for image, view_mask in zip(images[1:], masks[1:]):
        inside, outside = view_mask[0] > 0.99, view_mask[0] < 0.01
        assert inside.sum() > 50 and outside.sum() > 50
        # The subject keeps its colours; around it, one plain colour and none of the stripes.
        torch.testing.assert_close(image[:, inside].mean(dim=1), subject_colour, atol=0.08, rtol=0)
        assert image[:, outside].std(dim=1).max() < 0.01  # the stripes: ~0.2
        areas.append(float(view_mask.sum()))
    assert max(areas) > 1.5 * min(areas)  # zoomed in and out, not one size
    backgrounds = {tuple(image[:, 0, 0].round(decimals=2).tolist()) for image in images[1:]}
    assert len(backgrounds) == 6


def test_no_subject_in_the_mask_or_no_views_leaves_the_reference_alone():
    reference, mask = character_on_a_background(64)
    assert subject_box(torch.zeros_like(mask)) is None
    for count, view_mask in ((4, torch.zeros_like(mask)), (0, mask)):
        images, masks = make_views(reference, view_mask, count, torch.Generator().manual_seed(0))
        assert images is reference and masks is view_mask


def test_each_step_draws_its_batch_among_the_reference_and_its_views(tiny_backbone):
    reference, mask = character_on_a_background(tiny_backbone.resolution)
    images, masks = make_views(reference, mask, 3, torch.Generator().manual_seed(0))
    latents = tiny_backbone.encode_images(images)
    drawn = set()
    generator = torch.Generator().manual_seed(1)
    for _ in range(10):
        batch = draw_batch(tiny_backbone, latents, masks, "x", 4, generator)
        for x0, step_mask in zip(batch.x0, batch.mask):
            view = next(i for i in range(4) if torch.equal(x0, latents[i]) or torch.equal(x0, latents[i].flip(-1)))
            assert torch.equal(step_mask, masks[view]) or torch.equal(step_mask, masks[view].flip(-1))
            drawn.add(view)
    assert drawn == {0, 1, 2, 3}


def test_adaptation_with_views_learns_something_else_than_without(tiny_backbone):
    reference, mask = character_on_a_background(tiny_backbone.resolution)
    plain = AdaptationSettings(steps=3, batch_size=2)
    with_views = AdaptationSettings(steps=3, batch_size=2, reference_views=4)
    assert plain.settings_hash("m") != with_views.settings_hash("m")
    first = adapt_concept(tiny_backbone, reference, mask, plain)
    again = adapt_concept(tiny_backbone, reference, mask, plain)
    viewed = adapt_concept(tiny_backbone, reference, mask, with_views)
    assert torch.equal(first.vectors, again.vectors)
    assert not torch.equal(first.vectors, viewed.vectors)
