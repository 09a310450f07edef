"""The real path: an SD-1.5-shaped diffusers folder as `runtime.model`, at 512 px, through
the real runtime subprocess and the real client (issue #16). The folder comes from the
repository's own builder (`stickerbot make-test-model`), tiny in width so it runs on a CPU,
but its results are as large as a real model's."""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from seal_runtime.api.config import AdaptationSettings, GenerationSettings
from seal_runtime.api.protocol import JobRequest
from tests.runtime_helpers import running_runtime


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


async def test_a_512px_job_with_megabytes_of_results_reaches_the_client(sd15_model_dir):
    """Two 512 px scene PNGs and the concept are several hundred KB each: more than an
    aiohttp line can hold, which is how the one-line NDJSON result failed (LineTooLong)."""
    async with running_runtime({"STICKERBOT_RUNTIME__MODEL": str(sd15_model_dir)}) as (client, _, _):
        result = await client.run_job(sd_job("sd1"))
    assert result.adapted and len(result.images_png) == 2
    total = sum(map(len, result.images_png)) + len(result.embedding)
    assert total > 512 * 1024
    for png in result.images_png:
        assert Image.open(io.BytesIO(png)).size == (512, 512)
