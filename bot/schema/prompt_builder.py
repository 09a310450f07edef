"""StickerRequest -> the diffusion prompt. StickerWorld captions use this same builder."""

from __future__ import annotations

from bot.schema.sticker_request import StickerRequest
from bot.schema.vocabulary import ACTION, APPEARANCE, BACKGROUND, COMPOSITION, EMOTION, STYLE

# The placeholder the runtime swaps for the learned concept token(s).
CONCEPT_PLACEHOLDER = "<concept>"


def build_prompt(request: StickerRequest, subject: str = CONCEPT_PLACEHOLDER) -> str:
    """Appearance first (the identity), then Emotion, Action, Composition, Style, Background.

    Example: "a sticker of <concept> wearing a hat, happy smiling face, waving one arm,
    full body shot, centered, sticker style with a bold outline, on a sunny beach".
    """
    appearance = " ".join([subject, *(APPEARANCE[k].phrase for k in request.appearance)])
    parts = [
        f"a sticker of {appearance}",
        EMOTION[request.emotion].phrase,
        ACTION[request.action].phrase,
        COMPOSITION[request.composition].phrase,
        STYLE[request.style].phrase,
        BACKGROUND[request.background].phrase,
    ]
    if request.free_text:
        parts.append(" ".join(request.free_text))
    return ", ".join(parts)
