"""rembg as the segmenter, with a tiny ONNX model built here (torch.onnx.export): loaded from the
local file only, its mask recorded as "rembg", and used to cut generated stickers out."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from seal_runtime.api.config import RuntimeSettings
from seal_runtime.imaging.cutout import cut_out
from seal_runtime.imaging.rembg_loader import (
    RembgMasker,
    architecture_of,
    load_rembg_masker,
)
from seal_runtime.imaging.sam_loader import load_segmenter
from seal_runtime.imaging.subject_mask import compute_subject_mask

pytest.importorskip("rembg", reason="the rembg extra is not installed")
pytest.importorskip("onnx", reason="building the test model needs onnx")


class BlueIsSubject(torch.nn.Module):
    """A stand-in for u2net: 'subject' wherever blue beats red by a margin (so a red patch on
    the character is *not* subject, which the flood fill would keep: that tells them apart)."""

    def forward(self, x):  # (1, 3, 320, 320), ImageNet-normalised by rembg
        return torch.sigmoid(40 * (x[:, 2:3] - x[:, 0:1] - 0.5))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "u2net-tiny.onnx"
    torch.onnx.export(
        BlueIsSubject(),
        torch.zeros(1, 3, 320, 320),
        str(path),
        input_names=["input.1"],
        output_names=["mask"],
        dynamo=False,
    )
    return path


def character() -> Image.Image:
    image = Image.new("RGB", (128, 128), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse([24, 20, 104, 116], fill=(30, 80, 230))
    draw.rectangle([56, 56, 72, 72], fill=(230, 40, 40))  # a red patch inside the body
    return image


def test_rembg_masker_from_a_local_onnx_file(onnx_model, monkeypatch):
    import pooch

    def no_downloads(*args, **kwargs):
        raise AssertionError("rembg tried to download a model")

    monkeypatch.setattr(pooch, "retrieve", no_downloads)
    masker = load_rembg_masker(RuntimeSettings(rembg_model=str(onnx_model)))
    assert isinstance(masker, RembgMasker)
    mask = np.asarray(masker.mask(character()))
    assert mask.shape == (128, 128)
    assert mask[40, 64] > 200 and mask[5, 5] < 30 and mask[64, 64] < 30  # body, background, red patch


def test_its_mask_is_recorded_as_rembg_and_it_wins_over_sam(onnx_model):
    masker = load_segmenter(RuntimeSettings(rembg_model=str(onnx_model), sam_checkpoint="/nowhere/sam.pth"), "cpu")
    mask, source = compute_subject_mask(character(), masker)
    assert source == "rembg" and np.asarray(mask)[40, 64] > 200


def test_stickers_are_cut_along_the_segmenters_mask(onnx_model):
    masker = load_rembg_masker(RuntimeSettings(rembg_model=str(onnx_model)))
    with_rembg = np.asarray(cut_out(character(), background="plain", masker=masker).getchannel("A"))
    classical = np.asarray(cut_out(character(), background="plain").getchannel("A"))
    assert with_rembg[64, 64] < 30 and classical[64, 64] == 255  # the model's mask, not the flood fill's
    assert with_rembg[5, 5] == 0 and with_rembg[40, 64] > 200
    scene = np.asarray(cut_out(character(), background="scene", masker=masker).getchannel("A"))
    assert (scene == 255).all()  # a requested scene is never cut


def test_missing_file_or_wrong_architecture_fail_clearly(tmp_path):
    with pytest.raises(RuntimeError, match="no file at"):
        load_rembg_masker(RuntimeSettings(rembg_model=str(tmp_path / "isnet-anime.onnx")))
    assert load_rembg_masker(RuntimeSettings()) is None
    assert architecture_of("/m/isnet-anime.onnx") == "isnet"
    assert architecture_of("/m/BiRefNet-general.onnx") == "birefnet"
    assert architecture_of("/m/u2net.onnx") == "u2net"
    with pytest.raises(ValueError):
        architecture_of("/m/x.onnx", "modnet")
