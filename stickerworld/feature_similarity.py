"""CLIP-I, CLIP-T and DINO similarity, the paper's metrics for real models.

Computed with transformers models from a local folder (nothing is downloaded): a CLIP
model (e.g. a saved `openai/clip-vit-base-patch32`) and a DINO/DINOv2 model (e.g.
`facebook/dinov2-small`). On StickerWorld the recogniser's features play DINO's part
(`stickerworld.recognition`); these scorers let an operator with weights compute the
paper's own numbers on the same generations.

- CLIP-I: cosine of the CLIP image embeddings of a sticker and the reference.
- CLIP-T: cosine of a sticker's CLIP image embedding and its prompt's text embedding.
- DINO: cosine of the [CLS] features of a sticker and the reference.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image


def _rgb(images: list[Image.Image]) -> list[Image.Image]:
    """Transparent stickers are judged on white, as a chat shows them."""
    out = []
    for image in images:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        out.append(canvas.convert("RGB"))
    return out


class ClipScorer:
    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.device = torch.device(device)
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)

    @torch.no_grad()
    def image_features(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=_rgb(images), return_tensors="pt")["pixel_values"].to(self.device)
        return F.normalize(_embeds(self.model.get_image_features(pixel_values=pixels)), dim=-1)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings,
                                return_tensors="pt").to(self.device)
        features = self.model.get_text_features(input_ids=tokens["input_ids"],
                                                attention_mask=tokens.get("attention_mask"))
        return F.normalize(_embeds(features), dim=-1)

    def clip_i(self, images: list[Image.Image], reference: Image.Image) -> list[float]:
        return (self.image_features(images) @ self.image_features([reference]).T).squeeze(-1).tolist()

    def clip_t(self, images: list[Image.Image], prompts: list[str]) -> list[float]:
        return (self.image_features(images) * self.text_features(prompts)).sum(-1).tolist()


class DinoScorer:
    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModel

        self.device = torch.device(device)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)

    @torch.no_grad()
    def features(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=_rgb(images), return_tensors="pt")["pixel_values"].to(self.device)
        return F.normalize(self.model(pixel_values=pixels).last_hidden_state[:, 0], dim=-1)  # [CLS]

    def dino(self, images: list[Image.Image], reference: Image.Image) -> list[float]:
        return (self.features(images) @ self.features([reference]).T).squeeze(-1).tolist()


def _embeds(output) -> torch.Tensor:
    # transformers 5 may return a model output instead of a tensor from get_*_features
    return output if isinstance(output, torch.Tensor) else output.pooler_output
