"""Samples: a scene drawn by the renderer, its exact mask, six tags and a caption
built by the bot's prompt builder (so training captions and user prompts match)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from PIL import Image

from bot.schema.prompt_builder import build_prompt
from bot.schema.sticker_request import StickerRequest
from bot.schema.vocabulary import ACTION, BACKGROUND, COMPOSITION, EMOTION, STYLE
from stickerworld.identities import Identity, training_identities
from stickerworld.render import Scene, render


@dataclass(frozen=True)
class Sample:
    scene: Scene
    image: Image.Image  # RGBA
    mask: Image.Image  # L, 255 = subject
    caption: str

    @property
    def tags(self) -> dict[str, str]:
        return self.scene.tags()


def caption_for(scene: Scene) -> str:
    request = StickerRequest(
        emotion=scene.emotion,
        action=scene.action,
        composition=scene.composition,
        style=scene.style,
        background=scene.background,
        appearance=scene.identity.appearance(),
    )
    return build_prompt(request, subject=scene.identity.subject_words())


def random_scene(rng: random.Random, identities: list[Identity] | None = None, **fixed) -> Scene:
    identities = identities or training_identities()
    values = dict(
        identity=rng.choice(identities),
        emotion=rng.choice(EMOTION.keys()),
        action=rng.choice(ACTION.keys()),
        composition=rng.choice(COMPOSITION.keys()),
        style=rng.choice(STYLE.keys()),
        background=rng.choice(BACKGROUND.keys()),
    )
    values.update(fixed)
    return Scene(**values)


def make_sample(scene: Scene, size: int = 64, seed: int = 0) -> Sample:
    image, mask = render(scene, size, seed)
    return Sample(scene, image, mask, caption_for(scene))


def generate(count: int, seed: int = 0, size: int = 64, identities: list[Identity] | None = None) -> list[Sample]:
    """`count` samples, the same for the same seed."""
    rng = random.Random(seed)
    return [make_sample(random_scene(rng, identities), size, seed=rng.randrange(2**31)) for _ in range(count)]


def sample_reference_scene() -> Scene:
    """The demo's bundled character: a held-out identity (the model never trained on it),
    photographed on a beach so that SEAL has a background to keep out of the concept."""
    from stickerworld.identities import Identity

    identity = Identity("round", "teal", "spots", "big", "none")
    return Scene(identity, emotion="happy", action="standing", composition="full body",
                 style="bold outline", background="beach")
