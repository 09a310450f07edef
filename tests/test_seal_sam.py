"""The segment-anything mask source, with a tiny randomly initialised SAM built in code."""

import sys
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.imaging.sam_loader import SamMasker, load_sam_predictor
from seal_runtime.imaging.torchvision_compat import batched_nms, import_segment_anything, resize, torchvision_works


def tiny_sam(seed: int = 0):
    """SAM's three parts at toy size: a 64 px ViT with 8 px patches, 32-d prompts."""
    segment_anything = import_segment_anything()
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(seed)
    image_size, patch, dim = 64, 8, 32
    encoder = ImageEncoderViT(img_size=image_size, patch_size=patch, embed_dim=32, depth=1, num_heads=2, mlp_ratio=2.0,
                              out_chans=dim, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                              window_size=0, global_attn_indexes=())
    prompts = PromptEncoder(embed_dim=dim, image_embedding_size=(image_size // patch, image_size // patch),
                            input_image_size=(image_size, image_size), mask_in_chans=4)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=1, iou_head_hidden_dim=16,
                          transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2))
    return segment_anything, Sam(image_encoder=encoder, prompt_encoder=prompts, mask_decoder=decoder).eval()


def opaque_picture():
    image = Image.new("RGB", (96, 80), (40, 120, 220))
    image.paste((230, 120, 40), (30, 20, 66, 60))
    return image


def test_segment_anything_imports_without_leaving_a_fake_torchvision_behind():
    segment_anything = import_segment_anything()
    assert hasattr(segment_anything, "SamPredictor")
    if not torchvision_works():
        assert "torchvision" not in sys.modules


def test_stand_in_transforms_behave_like_torchvision():
    picture = Image.new("RGB", (40, 20))
    assert resize(picture, (10, 20)).size == (20, 10)  # torchvision sizes are (h, w)
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7])
    kept = batched_nms(boxes, scores, torch.tensor([0, 0, 1]), 0.5)
    assert kept.tolist() == [0, 2]  # the overlapping box of the same class goes


def test_sam_masker_gives_a_binary_mask_of_the_picture_size():
    segment_anything, sam = tiny_sam()
    masker = SamMasker(segment_anything.SamPredictor(sam))
    mask = masker.mask(opaque_picture())
    assert mask is not None and mask.mode == "L" and mask.size == (96, 80)
    values = set(np.unique(np.asarray(mask)).tolist())
    assert values <= {0, 255} and 255 in values
    assert callable(masker.set_image) and callable(masker.predict)  # a bare predictor's API still works


def test_load_sam_predictor_reads_a_configured_checkpoint(tmp_path, monkeypatch):
    segment_anything, sam = tiny_sam()
    checkpoint = tmp_path / "sam_tiny.pth"
    torch.save(sam.state_dict(), checkpoint)
    monkeypatch.setitem(segment_anything.sam_model_registry, "tiny_test", lambda checkpoint=None: tiny_sam(1)[1])
    masker = load_sam_predictor(RuntimeSettings(sam_checkpoint=str(checkpoint), sam_model_type="tiny_test"),
                                torch.device("cpu"))
    assert isinstance(masker, SamMasker)
    for name, value in masker.predictor.model.state_dict().items():
        assert torch.equal(value, sam.state_dict()[name]), name  # the checkpoint's weights, not seed 1's
    assert masker.mask(opaque_picture()).size == (96, 80)


def test_no_checkpoint_means_no_sam():
    assert load_sam_predictor(RuntimeSettings(), torch.device("cpu")) is None


def test_compute_subject_mask_takes_the_sam_path_for_an_opaque_reference():
    subject_mask = pytest.importorskip("seal_runtime.imaging.subject_mask")
    segment_anything, sam = tiny_sam()
    predictor = segment_anything.SamPredictor(sam)
    calls = []
    original = predictor.set_image
    predictor.set_image = lambda *args, **kwargs: (calls.append(1), original(*args, **kwargs))[1]
    mask, source = subject_mask.compute_subject_mask(opaque_picture().convert("RGBA"), SamMasker(predictor))
    assert calls, "SAM was not asked"
    assert source == "sam"
    assert mask.mode == "L" and mask.size == (96, 80)
