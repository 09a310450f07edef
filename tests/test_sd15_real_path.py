"""The SD-1.5-shaped test model (`stickerbot make-test-model`, issue #16): a real
StableDiffusionPipeline folder, tiny in width so it runs on a CPU at 512 px, and the
engine on it. tests/test_sd15_demo.py runs it end to end through `stickerbot demo`."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.api.protocol import JobRequest


def reference_png(side: int = 384) -> bytes:
    image = Image.new("RGB", (side, side * 3 // 4), (250, 250, 250))
    for x in range(side // 3, 2 * side // 3):
        for y in range(side // 6, side // 2):
            image.putpixel((x, y), (40, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def sd_job(job_id: str, **adaptation) -> JobRequest:
    return JobRequest(
        job_id=job_id,
        reference_png=reference_png(),
        prompts=("a sticker of <concept>, happy, on a beach",) * 2,
        seeds=(1, 2),
        adaptation=dataclasses.asdict(AdaptationSettings(steps=2, batch_size=1, **adaptation)),
        generation=dataclasses.asdict(GenerationSettings(steps=2)),
    )


def test_the_test_model_is_a_stable_diffusion_pipeline(sd15_model_dir):
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    assert (sd15_model_dir / "tokenizer" / "vocab.json").exists()
    assert (sd15_model_dir / "tokenizer" / "merges.txt").read_text().startswith("#version: 0.2\n")
    pipe = StableDiffusionPipeline.from_pretrained(sd15_model_dir, local_files_only=True)
    assert isinstance(pipe.tokenizer, CLIPTokenizer) and isinstance(pipe.scheduler, PNDMScheduler)
    assert pipe.vae_scale_factor == 8 and pipe.unet.config.sample_size * 8 == 512
    assert pipe.tokenizer.tokenize("a happy sticker") == ["a</w>", "happy</w>", "sticker</w>"]
    cross = {name.split(".attentions")[0] for name, _ in pipe.unet.named_modules() if name.endswith("attn2")}
    assert cross == {"down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block",
                     "up_blocks.1", "up_blocks.2", "up_blocks.3"}


def test_a_request_s_images_are_generated_in_one_batch_each_from_its_own_seed(sd15_model_dir):
    """The engine on the SD-shaped folder at 512 px: both prompts of a request are sampled
    in one batch, and an image depends on its seed only, not on what it was batched with."""
    import torch

    from seal_runtime.api.config import RuntimeSettings
    from seal_runtime.engine import StickerEngine
    from seal_runtime.models.loader import load_backbone

    torch.set_num_threads(1)
    engine = StickerEngine(load_backbone(RuntimeSettings(model=str(sd15_model_dir), device="cpu")))
    calls = []
    unet_forward = engine.backbone.unet.forward
    engine.backbone.unet.forward = lambda sample, *a, **k: calls.append(sample.shape[0]) or unet_forward(sample, *a, **k)
    learned = engine.run(sd_job("sd1"))
    assert learned.adapted and learned.concept.model_id.startswith("sd-")
    calls.clear()
    both = engine.run(dataclasses.replace(sd_job("sd2"), embedding=learned.concept.embedding))
    assert calls == [4, 4]  # 2 steps, each one U-Net call on 2 images x (conditional, unconditional)
    alone = engine.run(dataclasses.replace(sd_job("sd3"), embedding=learned.concept.embedding,
                                           prompts=("a sticker of <concept>, happy, on a beach",), seeds=(2,)))
    assert [image.size for image in both.images] == [(512, 512)] * 2
    difference = torch.tensor(list(both.images[1].tobytes()), dtype=torch.float32) - \
        torch.tensor(list(alone.images[0].tobytes()), dtype=torch.float32)
    assert difference.abs().max() <= 2  # the same picture (batched convolutions round a little differently)
    assert both.images[0].tobytes() != both.images[1].tobytes()
