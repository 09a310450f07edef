"""What a user asked for: a typed StickerRequest over the six-attribute schema."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.schema.vocabulary import ACTION, BACKGROUND, COMPOSITION, EMOTION, STYLE, Attribute


@dataclass(frozen=True)
class StickerRequest:
    """What a user asked for. Appearance is the learned concept plus `appearance` extras."""

    emotion: str = EMOTION.default or "happy"
    action: str = ACTION.default or "standing"
    composition: str = COMPOSITION.default or "full body"
    style: str = STYLE.default or "bold outline"
    background: str = BACKGROUND.default or "plain"
    appearance: tuple[str, ...] = ()
    free_text: tuple[str, ...] = ()
    # Which slots the user filled explicitly (the rest are defaults).
    explicit: frozenset[Attribute] = field(default_factory=frozenset)

    def as_tags(self) -> dict[str, str]:
        return {
            "appearance": " ".join(self.appearance),
            "emotion": self.emotion,
            "action": self.action,
            "composition": self.composition,
            "style": self.style,
            "background": self.background,
        }

    def describe(self) -> str:
        """Short human summary for progress messages: 'happy, waving, beach'."""
        parts = [self.emotion, self.action, self.background if self.background != "plain" else ""]
        parts += list(self.appearance) + list(self.free_text)
        return ", ".join(p for p in parts if p)
